"""metrics.json (the only contract between a run and the sweep report) and the per-label Markdown table."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from emoreason.labels import LABELS


def write_json_atomic(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as pretty UTF-8 JSON; readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    os.replace(tmp, path)
    return path


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
