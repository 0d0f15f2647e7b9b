"""docs/results.md quotes the study's report, kept beside it in docs/results/study/ (report.py's output for
the study's sweep folder): every figure of its comparison and arm tables is checked here against that
report.json, formatted independently, so the page cannot drift from the run it reports."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results.md"
REPORT = ROOT / "docs" / "results" / "study" / "report.json"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return json.loads(REPORT.read_text(encoding="utf-8"))


def table(header_start: str) -> list[list[str]]:
    """The body rows of the page's one Markdown table whose header row starts with ``header_start``."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith(header_start)]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def plain(cell: str) -> str:
    """A cell as report.md would print it: ASCII minus, no emphasis or code marks."""
    return re.sub(r"[*`]", "", cell).replace("−", "-")


def difference(d: dict[str, float], resamples: int) -> str:
    """B − A in F1 points, its interval and p-value (printed as its bound when no replicate reached it)."""
    points = f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"
    bound = 1 / (resamples + 1)
    return f"{points}, " + (f"p ≤ {bound:.2g}" if d["p"] <= bound else f"p = {d['p']:.2g}")


def mean_std(stat: dict[str, Any]) -> str:
    return f"{stat['mean']:.3f}" + (f" ± {stat['std']:.3f}" if stat["std"] is not None else "")


def test_every_comparison_on_the_page_is_the_reports(report):
    paired = report["paired"]
    comparisons = {(c["b"], c["a"]): c for c in paired["comparisons"]}
    rows = table("| B | A |")
    assert len(rows) >= 10
    for b, a, seeds, macro, micro in rows:
        comparison = comparisons[plain(b), plain(a)]
        assert int(seeds) == len(comparison["seeds"]), (b, a)
        assert plain(macro) == difference(comparison["macro_f1"], paired["resamples"]), (b, a)
        assert plain(micro) == difference(comparison["micro_f1"], paired["resamples"]), (b, a)


def test_every_arm_on_the_page_is_the_reports_mean_over_its_seeds(report):
    cells = {cell["columns"]["experiment"]: cell for cell in report["cells"]}
    rows = table("| arm | seeds |")
    assert {plain(row[0]) for row in rows} == set(cells)  # every arm, none made up
    for arm, seeds, macro, micro, kote, auroc in rows:
        cell = cells[plain(arm)]
        figures = cell["metrics"]
        assert seeds == ", ".join(map(str, cell["seeds"])), arm
        assert macro == mean_std(figures["test_macro_f1"]), arm
        assert micro == mean_std(figures["test_micro_f1"]), arm
        at_03 = (figures["test_macro_f1@0.3"], figures["test_micro_f1@0.3"])
        assert kote == " / ".join(f"{stat['mean']:.3f}" for stat in at_03), arm
        assert auroc == f"{figures['test_macro_auroc']['mean']:.3f}", arm


def test_the_page_states_how_many_jobs_the_report_holds(report):
    assert f"{report['finished']['jobs']} of the 27 jobs" in PAGE.read_text(encoding="utf-8")
