"""What a scored test split leaves in a run folder besides metrics.json: the predictions file and the
per-label Markdown table, written once for ``train`` and ``evaluate`` (:func:`write_test_outputs`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from emoreason.data.kote import KoteRow
from emoreason.evaluation.records import PredictionRecord, Results, prediction_records, write_predictions
from emoreason.evaluation.scoring import ScoredSplit
from emoreason.io import write_text_atomic
from emoreason.labels import LABELS

log = logging.getLogger(__name__)

PER_LABEL_FILE = "per_label_f1.md"


def write_test_outputs(
    output_dir: Path, results: Results, rows: Sequence[KoteRow], test: ScoredSplit
) -> list[PredictionRecord]:
    """``test_predictions.jsonl`` and ``per_label_f1.md`` of ``test`` (the scores of ``rows``) at the
    results' threshold, and the log line with the headline figures; returns the prediction records."""
    assert results.test is not None, "results without a test split"
    records = prediction_records(rows, test.scores, results.threshold, test.generated)
    write_predictions(output_dir, records)
    write_text_atomic(output_dir / PER_LABEL_FILE, per_label_markdown(results))
    tuned = results.test.tuned
    log.info(
        "test macro-F1 %.4f (%s over the labels with gold support) micro-F1 %.4f (threshold %.2f %s)",
        tuned.macro_f1,
        "n/a" if tuned.macro_f1_supported is None else f"{tuned.macro_f1_supported:.4f}",
        tuned.micro_f1,
        results.threshold,
        results.threshold_source,
    )
    return records


def per_label_markdown(results: Results, split: str = "test") -> str:
    """Per-label F1 at the tuned threshold and at 0.5 with each label's gold rows, the averages on top.

    A label without a gold row shows ``no support`` instead of its (necessarily 0) F1, and the macro-F1 over
    the labels with support is shown beside the all-label one, so a small file's average is not misread.
    """
    section = getattr(results, split)
    tuned, fixed = section.tuned.to_json(), section.at_05.to_json()
    support, unsupported = section.support or {}, section.labels_without_support or []
    lines = [
        f"# Per-label F1 on {split} ({section.rows} rows, threshold {results.threshold:.2f})",
        "",
        "| label | F1 (tuned) | F1 (0.5) | gold rows |",
        "| --- | ---: | ---: | ---: |",
    ]
    if unsupported:
        lines[1:1] = [
            "",
            f"{len(unsupported)} of {len(support)} labels have no gold row here ({', '.join(unsupported)}): "
            "macro_f1 counts them as 0; macro_f1_supported leaves them out.",
        ]
    for key in ("macro_f1", "micro_f1", "weighted_f1"):
        lines.append(f"| **{key}** | {tuned[key]:.4f} | {fixed[key]:.4f} | |")
        if key == "macro_f1" and unsupported:
            supported = (_figure(tuned["macro_f1_supported"]), _figure(fixed["macro_f1_supported"]))
            lines.append(
                f"| **macro_f1_supported** ({len(support) - len(unsupported)} labels) "
                f"| {supported[0]} | {supported[1]} | |"
            )
    for label in LABELS:
        if support[label]:
            f1 = f"{tuned['per_label_f1'][label]:.4f} | {fixed['per_label_f1'][label]:.4f}"
        else:
            f1 = "no support | no support"
        lines.append(f"| {label} | {f1} | {support[label]} |")
    return "\n".join(lines) + "\n"


def _figure(value: float | None) -> str:
    """A figure to four places; ``n/a`` where none exists (no label has a gold row)."""
    return "n/a" if value is None else f"{value:.4f}"
