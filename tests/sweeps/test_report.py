"""The sweep report from job folders: cells, mean ± std over seeds, failures, and the four output files."""

import csv
import io
import json
import statistics

import matplotlib.image
import pytest

from emoreason.sweeps.report import build_report, write_report

from .sweep_support import fake_job, fake_metrics

PLAIN = [0.41, 0.45, 0.43]
REASONING = [0.52, 0.50, 0.55]


@pytest.fixture
def sweep(tmp_path):
    """2 data × 1 model × 3 seeds, plus a crashed and an unfinished job in a third cell."""
    num = 0
    for data, values in (("kote_plain", PLAIN), ("kote_reasoning", REASONING)):
        for seed, value in enumerate(values):
            overrides = [
                "+sweep=s",
                f"data={data}",
                "model=tiny_electra",
                f"seed={seed}",
                "paths.kote_dir=/x",
            ]
            fake_job(tmp_path, num, overrides, data=data, metrics=fake_metrics(seed, value))
            num += 1
    lr = ["data=kote_plain", "model=tiny_electra", "optim.lr=-1"]
    fake_job(
        tmp_path, num, [*lr, "seed=0"], failure={"error": "ValueError", "message": "Invalid learning rate"}
    )
    fake_job(tmp_path, num + 1, [*lr, "seed=1"])
    return tmp_path


def test_cells_are_overrides_but_the_seed_with_mean_and_sample_std(sweep):
    report = build_report(sweep)
    assert report["columns"] == ["optim.lr"]  # data and model are described by their config choices
    plain, reasoning, crashed = report["cells"]
    assert plain["choices"] == {"data": "kote_plain", "model": "tiny_electra", "method": "classifier"}
    assert plain["overrides"] == ["data=kote_plain", "model=tiny_electra"]
    for cell, values in ((plain, PLAIN), (reasoning, REASONING)):
        stat = cell["metrics"]["test_macro_f1"]
        assert stat["values"] == values and cell["n"] == 3 and cell["seeds"] == [0, 1, 2]
        assert stat["mean"] == pytest.approx(statistics.fmean(values))
        assert stat["std"] == pytest.approx(statistics.stdev(values))
        assert cell["metrics"]["test_weighted_f1"]["mean"] == pytest.approx(statistics.fmean(values) + 0.1)
        assert cell["metrics"]["test_macro_f1@0.5"]["mean"] == pytest.approx(statistics.fmean(values) / 2)
    assert crashed["n"] == 0 and crashed["failed"] == 1 and crashed["incomplete"] == 1
    assert crashed["metrics"]["test_macro_f1"] == {"mean": None, "std": None, "values": []}


def test_jobs_keep_their_status_and_error(sweep):
    jobs = build_report(sweep)["jobs"]
    assert [j["status"] for j in jobs] == ["finished"] * 6 + ["failed", "incomplete"]
    assert jobs[6]["error"] == "ValueError: Invalid learning rate"
    assert jobs[0]["test_macro_f1"] == PLAIN[0] and jobs[0]["seed"] == 0


def test_markdown_csv_and_json_hold_the_same_numbers(sweep):
    paths = write_report(sweep)
    report = json.loads(paths["json"].read_text(encoding="utf-8"))
    markdown = paths["markdown"].read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text(encoding="utf-8"))))
    for cell, row in zip(report["cells"], rows, strict=True):
        stat = cell["metrics"]["test_macro_f1"]
        assert row["data"] == cell["choices"]["data"] and int(row["n"]) == cell["n"]
        if stat["mean"] is not None:
            assert float(row["test_macro_f1_mean"]) == stat["mean"]
            assert float(row["test_macro_f1_std"]) == stat["std"]
            assert f"{stat['mean']:.4f} ± {stat['std']:.4f}" in markdown
    assert "| kote_plain | tiny_electra | classifier | 3 | 0, 1, 2 |" in markdown
    assert "ValueError: Invalid learning rate" in markdown and "## Jobs without results (2 of 8)" in markdown


def test_single_runs_have_no_std_and_the_chart_is_written(tmp_path):
    fake_job(tmp_path, 0, ["seed=0"], metrics=fake_metrics(0, 0.3))
    paths = write_report(tmp_path, tmp_path / "out")
    cell = json.loads(paths["json"].read_text(encoding="utf-8"))["cells"][0]
    assert cell["metrics"]["test_macro_f1"]["std"] is None
    assert "| 0.3000 |" in paths["markdown"].read_text(encoding="utf-8")
    height, width, _ = matplotlib.image.imread(paths["chart"]).shape
    assert paths["chart"].parent == tmp_path / "out" and width > height > 400


def test_a_folder_without_jobs_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Hydra job folders"):
        build_report(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        build_report(tmp_path / "missing")
