"""metrics.json (the only contract between a run and the sweep report), the per-label Markdown table and
the per-row predictions file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from emoreason.data.kote import KoteRow
from emoreason.labels import LABELS, label_names


def prediction_records(
    rows: Sequence[KoteRow], scores: torch.Tensor, threshold: float, generated: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One record per row: id, text, gold and predicted label names, the 44 scores, and the generated text.

    A label is predicted when its score exceeds ``threshold``, as in the metrics. ``generated`` (in ``rows``
    order) is what a generative method wrote — its reasoning and label line — and is left out for a
    classifier.
    """
    above = (scores > threshold).tolist()  # compared in the scores' dtype, exactly as the metrics compare
    records = []
    for i, (row, row_scores) in enumerate(zip(rows, scores.tolist(), strict=True)):
        record: dict[str, Any] = {
            "id": row.id,
            "text": row.text,
            "gold": label_names(row.labels),
            "predicted": [label for label, on in zip(LABELS, above[i], strict=True) if on],
        }
        if generated is not None:
            record["generated"] = generated[i]
        record["scores"] = {label: round(score, 4) for label, score in zip(LABELS, row_scores, strict=True)}
        records.append(record)
    return records


def per_label_markdown(report: dict[str, Any], split: str = "test") -> str:
    """Per-label F1 at the tuned threshold and at 0.5, one row per emotion, with the averages on top."""
    section = report[split]
    tuned, fixed = section["tuned"], section["at_0.5"]
    lines = [
        f"# Per-label F1 on {split} ({section['rows']} rows, threshold {report['threshold']:.2f})",
        "",
        "| label | F1 (tuned) | F1 (0.5) |",
        "| --- | ---: | ---: |",
    ]
    for key in ("macro_f1", "micro_f1", "weighted_f1"):
        lines.append(f"| **{key}** | {tuned[key]:.4f} | {fixed[key]:.4f} |")
    for label in LABELS:
        lines.append(f"| {label} | {tuned['per_label_f1'][label]:.4f} | {fixed['per_label_f1'][label]:.4f} |")
    return "\n".join(lines) + "\n"
