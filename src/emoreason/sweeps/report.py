"""The sweep report: every job's metrics.json → report.json (the numbers), report.md, report.csv, fig3.png.

Why one payload: the table, the CSV and the chart are all rendered from ``report.json``, so they cannot
disagree, and a reviewer can check any bar against the per-job values listed next to it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from emoreason.io import write_json_atomic
from emoreason.sweeps.aggregate import CHOICE_KEYS, METRICS, PRIMARY_METRIC, Cell, group_cells, varying_keys
from emoreason.sweeps.chart import plot_fig3
from emoreason.sweeps.collect import JobResult, collect_jobs

KOTE_PAPER_REFERENCE = {"label": "KcELECTRA, KOTE paper", PRIMARY_METRIC: 0.56}
"""KcELECTRA's macro-F1 in the KOTE paper (full training split), drawn as the chart's reference line."""
OUTPUT_NAMES = {"json": "report.json", "markdown": "report.md", "csv": "report.csv", "chart": "fig3.png"}
METRIC_TITLES = {
    "test_macro_f1": "test macro-F1",
    "test_micro_f1": "test micro-F1",
    "test_weighted_f1": "test weighted-F1",
    "test_macro_f1@0.5": "test macro-F1 @0.5",
    "val_macro_f1": "val macro-F1",
}


def _cell_payload(cell: Cell, keys: list[str]) -> dict[str, Any]:
    return {
        "columns": cell.columns(keys),
        "overrides": list(cell.overrides),
        "choices": {key: cell.choices.get(key) for key in CHOICE_KEYS},
        "backbone": cell.backbone,
        "n": len(cell.finished),
        "seeds": cell.seeds,
        "failed": cell.count("failed"),
        "incomplete": cell.count("incomplete"),
        "metrics": {
            name: {"mean": stat.mean, "std": stat.std, "values": list(stat.values)}
            for name, stat in ((name, cell.stat(name)) for name in METRICS)
        },
    }


def _job_payload(job: JobResult) -> dict[str, Any]:
    metrics = job.metrics or {}
    test = metrics.get("test", {}).get("tuned", {})
    return {
        "folder": str(job.path),
        "status": job.status,
        "overrides": list(job.overrides),
        "seed": metrics.get("seed"),
        PRIMARY_METRIC: test.get("macro_f1"),
        "error": job.error,
    }


def build_report(sweep_dir: str | Path) -> dict[str, Any]:
    jobs = collect_jobs(sweep_dir)
    cells = group_cells(jobs)
    keys = varying_keys(cells)
    return {
        "sweep_dir": str(sweep_dir),
        "primary_metric": PRIMARY_METRIC,
        "reference": KOTE_PAPER_REFERENCE,
        "columns": keys,
        "cells": [_cell_payload(cell, keys) for cell in cells],
        "jobs": [_job_payload(job) for job in jobs],
    }


def format_stat(stat: dict[str, Any]) -> str:
    if stat["mean"] is None:
        return "—"
    return f"{stat['mean']:.4f}" + (f" ± {stat['std']:.4f}" if stat["std"] is not None else "")


def render_markdown(report: dict[str, Any]) -> str:
    keys = report["columns"]
    header = [*keys, *CHOICE_KEYS, "n", "seeds", *(METRIC_TITLES[m] for m in METRICS), "failed"]
    lines = [
        f"# Sweep report: {report['sweep_dir']}",
        "",
        "Mean ± sample std over seeds; n = finished runs per cell. F1 at the decision threshold tuned on "
        "validation, except the @0.5 column. Reference: "
        f"{report['reference']['label']}, test macro-F1 {report['reference'][PRIMARY_METRIC]:.2f}.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] * (len(keys) + 3) + ["---:"] * (len(header) - len(keys) - 3)) + " |",
    ]
    for cell in report["cells"]:
        row = [
            *(cell["columns"][k] for k in keys),
            *(str(cell["choices"][k]) for k in CHOICE_KEYS),
            str(cell["n"]),
            ", ".join(map(str, cell["seeds"])) or "—",
            *(format_stat(cell["metrics"][m]) for m in METRICS),
            str(cell["failed"] + cell["incomplete"]),
        ]
        lines.append("| " + " | ".join(row) + " |")
    unfinished = [job for job in report["jobs"] if job["status"] != "finished"]
    if unfinished:
        lines += ["", f"## Jobs without results ({len(unfinished)} of {len(report['jobs'])})", "",
                  "| folder | status | error |", "| --- | --- | --- |"]  # fmt: skip
        for job in unfinished:
            error = (job["error"] or "no metrics.json yet (running, or killed)").replace("|", "\\|")
            lines.append(f"| {Path(job['folder']).name} | {job['status']} | {error.splitlines()[0]} |")
    return "\n".join(lines) + "\n"


def render_csv(report: dict[str, Any]) -> str:
    keys = report["columns"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*keys, *CHOICE_KEYS, "backbone", "n", "seeds", "failed", "incomplete",
                     *(f"{m}_{part}" for m in METRICS for part in ("mean", "std"))])  # fmt: skip
    for cell in report["cells"]:
        described = [*(cell["columns"][k] for k in keys), *(cell["choices"][k] for k in CHOICE_KEYS)]
        counts = [
            cell["backbone"],
            cell["n"],
            ";".join(map(str, cell["seeds"])),
            cell["failed"],
            cell["incomplete"],
        ]
        stats = [cell["metrics"][m][part] for m in METRICS for part in ("mean", "std")]
        writer.writerow([*described, *counts, *("" if v is None else repr(v) for v in stats)])
    return buffer.getvalue()


def write_report(sweep_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write the four report files into ``out_dir`` (default: the sweep folder); return their paths."""
    report = build_report(sweep_dir)
    out = Path(out_dir if out_dir is not None else sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / name for kind, name in OUTPUT_NAMES.items()}
    write_json_atomic(paths["json"], report)
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    paths["csv"].write_text(render_csv(report), encoding="utf-8")
    plot_fig3(report, paths["chart"])
    return paths
