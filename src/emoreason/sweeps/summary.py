"""A sweep's summary (what ``python report.py`` writes): every job's metrics.json, floors.json and
test_predictions.jsonl → report.json (the numbers), report.md, report.csv, fig3.png and (with paired
comparisons) paired.png.

Why one payload: the table, the CSV and the charts are all rendered from ``report.json``, so they cannot
disagree, and a reviewer can check any bar against the per-job values listed next to it.

The paired bootstrap (:mod:`emoreason.sweeps.paired`) takes seconds per arm; it runs when ``resamples`` is
positive (``python report.py``: 2,000), not in the per-job rewrite during a sweep (``resamples=0``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from emoreason.evaluation.files import FLOORS_FILE
from emoreason.evaluation.floors import FLOOR_NAMES
from emoreason.io import write_json_atomic, write_text_atomic
from emoreason.sweeps.aggregate import (
    CHOICE_KEYS,
    METRICS,
    PRIMARY_METRIC,
    Cell,
    Stat,
    figure_stat,
    group_cells,
    varying_keys,
)
from emoreason.sweeps.chart import plot_fig3, plot_paired
from emoreason.sweeps.collect import JobResult, collect_jobs
from emoreason.sweeps.paired import arm_names, paired_section

KOTE_PAPER_REFERENCE = {"label": "KcELECTRA, KOTE paper", PRIMARY_METRIC: 0.56}
"""KcELECTRA's macro-F1 in the KOTE paper (full training split), drawn as the chart's reference line."""
OUTPUT_NAMES = {"json": "report.json", "markdown": "report.md", "csv": "report.csv", "chart": "fig3.png"}
PAIRED_CHART = "paired.png"
METRIC_TITLES = {
    "test_macro_f1": "test macro-F1",
    "test_micro_f1": "test micro-F1",
    "test_weighted_f1": "test weighted-F1",
    "test_macro_f1@0.5": "test macro-F1 @0.5",
    "test_macro_f1@0.3": "test macro-F1 @0.3 (KOTE)",
    "test_micro_f1@0.3": "test micro-F1 @0.3 (KOTE)",
    "test_macro_auroc": "test macro-AUROC",
    "val_macro_f1": "val macro-F1",
}
FLOOR_TITLES = {
    "every_label": "every label",
    "label_prior": "label-frequency prior",
    "tfidf_logreg": "TF-IDF char 1–3 + LR",
}
DEFAULT_RESAMPLES = 2000
"""Bootstrap replicates in ``python report.py``: percentile limits of a 95% interval settle to ~0.1 point."""


def _stat_payload(stat: Stat) -> dict[str, Any]:
    return {"mean": stat.mean, "std": stat.std, "values": list(stat.values)}


def _floors_payload(jobs: list[JobResult]) -> dict[str, Any]:
    """Each floor's figures over the distinct splits (by rows hash) the finished jobs wrote floors for."""
    by_key: dict[str, dict[str, Any]] = {}
    for job in jobs:
        path = job.path / FLOORS_FILE
        if job.status == "finished" and path.exists():
            stored = json.loads(path.read_text(encoding="utf-8"))
            by_key.setdefault(stored["key"], stored)
    splits = list(by_key.values())
    return {
        "splits": len(splits),
        "floors": {
            name: {m: _stat_payload(figure_stat([s["floors"][name] for s in splits], m)) for m in METRICS}
            for name in FLOOR_NAMES
        }
        if splits
        else {},
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
        "metrics": {name: _stat_payload(cell.stat(name)) for name in METRICS},
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


def finished_state(jobs: list[JobResult]) -> dict[str, Any]:
    """How many jobs have finished, and a digest of which ones with which results: paired statistics
    computed on another state (a job finished or was rerun since) are marked as behind."""
    finished = [job for job in jobs if job.status == "finished"]  # by overrides: however the path is spelled
    done = sorted((",".join(job.overrides), json.dumps(job.metrics, sort_keys=True)) for job in finished)
    return {"jobs": len(done), "digest": hashlib.sha256(json.dumps(done).encode()).hexdigest()[:16]}


def build_report(sweep_dir: str | Path, *, resamples: int = 0, bootstrap_seed: int = 0) -> dict[str, Any]:
    """report.json's payload; ``resamples > 0`` adds the paired comparisons (``paired``)."""
    jobs = collect_jobs(sweep_dir)
    cells = group_cells(jobs)
    keys = varying_keys(cells)
    payloads = [_cell_payload(cell, keys) for cell in cells]
    for payload, name in zip(payloads, arm_names(payloads, keys), strict=True):
        payload["name"] = name
    state = finished_state(jobs)
    return {
        "sweep_dir": str(sweep_dir),
        "finished": state,
        "primary_metric": PRIMARY_METRIC,
        "reference": KOTE_PAPER_REFERENCE,
        "columns": keys,
        "cells": payloads,
        "floors": _floors_payload(jobs),
        "paired": {
            **paired_section(cells, [p["name"] for p in payloads], resamples=resamples, seed=bootstrap_seed),
            "computed_on": state,
        },
        "jobs": [_job_payload(job) for job in jobs],
    }


def format_stat(stat: dict[str, Any]) -> str:
    if stat["mean"] is None:
        return "—"
    return f"{stat['mean']:.4f}" + (f" ± {stat['std']:.4f}" if stat["std"] is not None else "")


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def _p(d: dict[str, float], resamples: int) -> str:
    """``p = …``; ``p ≤ 1/(B+1)`` when no replicate was as extreme, the least a B-resample test can show."""
    floor = 1 / (resamples + 1)
    return f"p ≤ {floor:.2g}" if d["p"] <= floor else f"p = {d['p']:.2g}"


def _interval(d: dict[str, float], figure: str, resamples: int) -> str:
    return f"{_points(d['diff'])} {figure} [{_points(d['low'])}, {_points(d['high'])}], {_p(d, resamples)}"


def _reading(d: dict[str, float]) -> str:
    if d["low"] > 0:
        return "better"
    if d["high"] < 0:
        return "worse"
    return "no clear difference (the interval includes 0)"


def _verdict(comparison: dict[str, Any]) -> str:
    """One plain sentence: B vs A, macro- and micro-F1 differences in points with interval and p."""
    macro, micro, resamples = comparison["macro_f1"], comparison["micro_f1"], comparison["resamples"]
    runs = f"{len(comparison['seeds'])} seed(s) × {comparison['comments']:,} test comments"
    return (
        f"- **{comparison['b']} vs {comparison['a']}**: {_interval(macro, 'macro-F1', resamples)}; "
        f"{_interval(micro, 'micro-F1', resamples)} ({runs}): {_reading(macro)} on macro-F1."
    )


def _verdict_lines(report: dict[str, Any]) -> list[str]:
    paired = report["paired"]
    if not paired["resamples"]:
        return [
            "## Verdict",
            "",
            f"Paired comparisons are not computed in the per-job rewrite; run `python report.py "
            f"{report['sweep_dir']}` for them.",
            "",
        ]
    lines = ["## Verdict", ""]
    then, now = paired["computed_on"], report["finished"]
    if then != now:
        lines += [
            f"Computed by `python report.py` on an earlier state of this sweep ({then['jobs']} finished jobs "
            f"then, {now['jobs']} now, new or rerun since): rerun it to bring the paired statistics and "
            "paired.png up to date.",
            "",
        ]
    if not paired["comparisons"]:
        lines.append(
            "No two arms share finished seeds and test comments (test_predictions.jsonl): nothing to pair."
        )
    lines += [_verdict(c) for c in paired["comparisons"]]
    lines += [
        "",
        "Each line is B vs A: B − A in F1 points (×100), its 95% interval and p-value. Procedure: "
        f"{paired['procedure']}; {paired['resamples']:,} resamples, bootstrap seed "
        f"{paired['bootstrap_seed']}. F1 at each run's threshold tuned on validation, "
        "averaged over the paired seeds.",
        "",
    ]
    return lines


def _table(header: list[str], left: int, rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] * left + ["---:"] * (len(header) - left)) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _floor_lines(report: dict[str, Any]) -> list[str]:
    floors = report["floors"]
    if not floors["floors"]:
        return [
            "## Reference floors",
            "",
            "No finished job wrote floors.json (runs from before floors existed).",
            "",
        ]
    shown = ["test_macro_f1", "test_micro_f1", "test_macro_f1@0.3", "test_micro_f1@0.3", "test_macro_auroc"]
    rows = [
        [FLOOR_TITLES[name], *(format_stat(figures[m]) for m in shown)]
        for name, figures in floors["floors"].items()
    ]
    return [
        "## Reference floors",
        "",
        f"On the same rows as the runs (mean ± std over {floors['splits']} distinct split(s)); threshold "
        "tuned on the same validation rows. See emoreason.evaluation.floors.",
        "",
        *_table(["floor", *(METRIC_TITLES[m] for m in shown)], 1, rows),
        "",
    ]


def _comparison_lines(comparison: dict[str, Any]) -> list[str]:
    def row(name: str, d: dict[str, Any]) -> list[str]:
        interval = f"[{_points(d['low'])}, {_points(d['high'])}]"
        p = _p(d, comparison["resamples"]).removeprefix("p = ")
        return [name, f"{d['a']:.4f}", f"{d['b']:.4f}", _points(d["diff"]), interval, p]

    header = ["figure", "A", "B", "B − A (points)", "95% interval", "p"]
    rows = [row("macro-F1", comparison["macro_f1"]), row("micro-F1", comparison["micro_f1"])]
    for name, bucket in comparison["buckets"].items():
        low, high = bucket["gold_comments"]
        rows.append(
            row(f"macro-F1, {name} labels ({len(bucket['labels'])}; {low}–{high} gold comments)", bucket)
        )
    per_label = [row(f"{label} ({d['gold_comments']})", d) for label, d in comparison["per_label_f1"].items()]
    return [
        f"### {comparison['b']} (B) vs {comparison['a']} (A)",
        "",
        *_table(header, 1, rows),
        "",
        "<details><summary>per-label F1 (gold test comments in brackets)</summary>",
        "",
        *_table(header, 1, per_label),
        "",
        "</details>",
        "",
    ]


def render_markdown(report: dict[str, Any]) -> str:
    keys = report["columns"]
    header = [*keys, *CHOICE_KEYS, "n", "seeds", *(METRIC_TITLES[m] for m in METRICS), "failed / unfinished"]
    rows = [
        [
            *(cell["columns"][k] for k in keys),
            *(str(cell["choices"][k]) for k in CHOICE_KEYS),
            str(cell["n"]),
            ", ".join(map(str, cell["seeds"])) or "—",
            *(format_stat(cell["metrics"][m]) for m in METRICS),
            f"{cell['failed']} / {cell['incomplete']}",  # unfinished: still running, or killed
        ]
        for cell in report["cells"]
    ]
    lines = [
        f"# Sweep report: {report['sweep_dir']}",
        "",
        *_verdict_lines(report),
        "## Arms",
        "",
        "Mean ± sample std over seeds; n = finished runs per cell. F1 at the decision threshold tuned on "
        "validation, except the @0.5 and @0.3 columns (0.3 and macro-AUROC: the KOTE paper's protocol). "
        f"Reference: {report['reference']['label']}, test macro-F1 {report['reference'][PRIMARY_METRIC]:.2f} "
        "(micro-F1 0.66, on KOTE's 40k training split).",
        "",
        *_table(header, len(keys) + 3, rows),
        "",
        *_floor_lines(report),
    ]
    if report["paired"]["comparisons"]:
        lines += ["## Paired comparisons", ""]
        for comparison in report["paired"]["comparisons"]:
            lines += _comparison_lines(comparison)
    unfinished = [job for job in report["jobs"] if job["status"] != "finished"]
    if unfinished:
        lines += [
            f"## Jobs without results ({len(unfinished)} of {len(report['jobs'])})",
            "",
            "| folder | status | error |",
            "| --- | --- | --- |",
        ]
        for job in unfinished:
            error = (job["error"] or "no metrics.json yet (running, or killed)").replace("|", "\\|")
            lines.append(f"| {Path(job['folder']).name} | {job['status']} | {error.splitlines()[0]} |")
    return "\n".join(lines).rstrip("\n") + "\n"


CSV_FIGURES = [(m, part) for m in METRICS for part in ("mean", "std")]
"""The figure columns of report.csv, ``<metric>_mean`` and ``<metric>_std``, in this order."""


def _csv_figures(figures: dict[str, Any]) -> dict[str, str]:
    """The figure columns of one arm or floor; a missing figure is left empty."""
    return {
        f"{m}_{part}": "" if figures[m][part] is None else repr(figures[m][part]) for m, part in CSV_FIGURES
    }


def render_csv(report: dict[str, Any]) -> str:
    """One row per arm (``row=arm``), then one per reference floor (``row=floor``, its name as ``method``,
    ``n`` the number of distinct splits it was computed on)."""
    keys = report["columns"]
    header = ["row", *keys, *CHOICE_KEYS, "backbone", "n", "seeds", "failed", "incomplete"]
    header += [f"{m}_{part}" for m, part in CSV_FIGURES]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    for cell in report["cells"]:
        writer.writerow(
            {
                "row": "arm",
                **{k: cell["columns"][k] for k in keys},
                **{k: cell["choices"][k] for k in CHOICE_KEYS},
                "backbone": cell["backbone"],
                "n": cell["n"],
                "seeds": ";".join(map(str, cell["seeds"])),
                "failed": cell["failed"],
                "incomplete": cell["incomplete"],
                **_csv_figures(cell["metrics"]),
            }
        )
    for name, figures in report["floors"]["floors"].items():
        writer.writerow(
            {"row": "floor", "method": name, "n": report["floors"]["splits"], **_csv_figures(figures)}
        )
    return buffer.getvalue()


def _earlier_statistics(previous: Path, sweep_dir: str | Path) -> dict[str, Any] | None:
    """The ``paired`` block a ``python report.py`` run on ``sweep_dir`` left in ``previous`` (report.json).

    The per-job rewrite during a sweep computes no paired statistics; without this it erased the ones
    report.py had written, minutes after the user ran it. Kept, they are marked when the sweep has moved on.
    A report of another sweep in the same ``--out`` folder lends none.
    """
    try:
        earlier = json.loads(previous.read_text(encoding="utf-8"))
        same_sweep = Path(earlier["sweep_dir"]).resolve() == Path(sweep_dir).resolve()
        paired = earlier["paired"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not same_sweep or not isinstance(paired, dict) or not paired.get("resamples"):
        return None
    return paired if "computed_on" in paired else None


def write_report(
    sweep_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    resamples: int = 0,
    bootstrap_seed: int = 0,
    keep_earlier: bool = False,
) -> dict[str, Path]:
    """Write the report files into ``out_dir`` (default: the sweep folder); return their paths.

    ``resamples > 0`` adds the paired comparisons and their chart, paired.png. Without them,
    ``keep_earlier`` (the per-job rewrite during a sweep) keeps those a ``report.py`` run on the same sweep
    last wrote into ``out_dir``; otherwise a paired.png left there is removed.
    """
    report = build_report(sweep_dir, resamples=resamples, bootstrap_seed=bootstrap_seed)
    out = Path(out_dir if out_dir is not None else sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / name for kind, name in OUTPUT_NAMES.items()}
    if not resamples:
        if keep_earlier:
            report["paired"] = _earlier_statistics(paths["json"], sweep_dir) or report["paired"]
        if not report["paired"]["comparisons"]:
            (out / PAIRED_CHART).unlink(missing_ok=True)  # it would show statistics no file holds
    write_json_atomic(paths["json"], report)
    write_text_atomic(paths["markdown"], render_markdown(report))
    write_text_atomic(paths["csv"], render_csv(report))
    plot_fig3(report, paths["chart"])
    if report["paired"]["comparisons"]:
        paths["paired_chart"] = plot_paired(report, out / PAIRED_CHART)
    return paths
