"""The sweep report from job folders: cells, mean ± std over seeds, failures, and the four output files."""

import csv
import io
import json
import statistics

import matplotlib.image
import numpy as np
import pytest

from emoreason.evaluation.floors import FLOOR_NAMES
from emoreason.sweeps.paired import PredictionsError
from emoreason.sweeps.stats import paired_bootstrap
from emoreason.sweeps.summary import build_report, write_report
from tests.support.sweeps import fake_job, fake_metrics, fake_predictions

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


def test_a_sweep_gathered_from_several_invocations_lists_its_arms_by_the_first_seeds_grid(tmp_path):
    """Hydra numbers each ``train.py -m`` from 0: the study ran one invocation per seed (and a late one
    for two arms), and the arms, with the direction of their comparisons, moved as jobs finished."""
    arms = ["data=a", "data=b", "data=c"]
    invocations = [(0, arms), (2, arms), (1, arms[:1]), (1, arms[2:])]  # seed 1's "data=c" is job 0 too
    for seed, grid in invocations:
        for num, arm in enumerate(grid):
            fake_job(tmp_path, num, [arm, f"seed={seed}"], metrics=fake_metrics(seed, 0.4 + seed / 100))
    cells = build_report(tmp_path)["cells"]
    assert [cell["overrides"] for cell in cells] == [[arm] for arm in arms]
    assert [cell["seeds"] for cell in cells] == [[0, 1, 2], [0, 2], [0, 1, 2]]
    values = cells[0]["metrics"]["test_macro_f1"]["values"]
    assert values == pytest.approx([0.40, 0.41, 0.42])  # in the seeds' order


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
    assert "| failed / unfinished |" in markdown and markdown.count("| 1 / 1 |") == 1  # the crashed cell


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


def floor_payload(key: str, macro: float) -> dict:
    """A floors.json whose three floors have test macro-F1 ``macro`` (micro 0.1 higher)."""
    report = {
        "threshold": 0.2,
        "test": {"tuned": {"macro_f1": macro, "micro_f1": macro + 0.1}, "macro_auroc": 0.7},
    }
    return {"key": key, "floors": dict.fromkeys(("every_label", "label_prior", "tfidf_logreg"), report)}


@pytest.fixture
def paired_sweep(tmp_path):
    """Three arms × 2 seeds on the same 300 test comments: plain, reasoning (fewer errors), plain again
    (plain's very predictions); each seed's jobs share one floors.json (one split per seed)."""
    rng = np.random.default_rng(0)
    gold = rng.random((300, 44)) < 0.12
    ids = [str(1000 + i) for i in range(300)]
    plain = [gold ^ (rng.random(gold.shape) < 0.15) for _ in range(2)]
    arms = {
        "plain": plain,
        "reasoning": [gold ^ (rng.random(gold.shape) < 0.05) for _ in range(2)],
        "plain_again": plain,
    }
    num = 0
    for arm, predictions in arms.items():
        for seed, predicted in enumerate(predictions):
            job = fake_job(
                tmp_path, num, [f"experiment={arm}", f"seed={seed}"], metrics=fake_metrics(seed, 0.4)
            )
            fake_predictions(job, ids, gold, predicted)
            floors = floor_payload(f"split{seed}", 0.30 + 0.02 * seed)
            (job / "floors.json").write_text(json.dumps(floors), encoding="utf-8")
            num += 1
    return tmp_path, gold, {arm: np.stack(p) for arm, p in arms.items()}


def test_paired_comparisons_equal_the_bootstrap_on_the_jobs_predictions(paired_sweep):
    sweep, gold, arms = paired_sweep
    report = build_report(sweep, resamples=200, bootstrap_seed=4)
    comparisons = {(c["b"], c["a"]): c for c in report["paired"]["comparisons"]}
    assert set(comparisons) == {
        ("reasoning", "plain"),
        ("plain_again", "plain"),
        ("plain_again", "reasoning"),
    }
    gain = comparisons[("reasoning", "plain")]
    expected = paired_bootstrap(gold, arms["plain"], arms["reasoning"], resamples=200, seed=4)
    assert (
        gain["macro_f1"] == expected["macro_f1"].to_json()
        and gain["micro_f1"] == expected["micro_f1"].to_json()
    )
    assert gain["macro_f1"]["low"] > 0 and gain["seeds"] == [0, 1] and gain["comments"] == 300
    rare = gain["buckets"]["rare"]
    assert {k: rare[k] for k in ("a", "b", "diff", "low", "high", "p")} == expected["rare_macro_f1"].to_json()
    assert len(gain["per_label_f1"]) == 44 and sum(len(b["labels"]) for b in gain["buckets"].values()) == 44
    same = comparisons[("plain_again", "plain")]["macro_f1"]
    assert same["diff"] == 0 and same["low"] <= 0 <= same["high"] and same["p"] == 1.0
    assert report["paired"]["resamples"] == 200 and "paired bootstrap" in report["paired"]["procedure"]


def test_markdown_leads_with_a_verdict_per_comparison_and_the_charts_show_intervals(paired_sweep):
    sweep, _, _ = paired_sweep
    paths = write_report(sweep, resamples=200)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    comparisons = json.loads(paths["json"].read_text(encoding="utf-8"))["paired"]["comparisons"]
    gain = next(c for c in comparisons if c["b"] == "reasoning")
    macro = gain["macro_f1"]
    verdict = (
        f"- **reasoning vs plain**: {100 * macro['diff']:+.1f} macro-F1 [{100 * macro['low']:+.1f}, "
        f"{100 * macro['high']:+.1f}], p ≤ 0.005; "  # 1/201: no replicate as extreme as no difference
    )
    assert markdown.splitlines()[2] == "## Verdict" and markdown.splitlines()[4].startswith(verdict)
    assert markdown.splitlines()[4].endswith("(2 seed(s) × 300 test comments): better on macro-F1.")
    assert "no clear difference" in markdown and "200 resamples" in markdown
    assert "### reasoning (B) vs plain (A)" in markdown and "macro-F1, rare labels (15;" in markdown
    height, width, _ = matplotlib.image.imread(paths["paired_chart"]).shape
    assert paths["paired_chart"].name == "paired.png" and width > 400 and height > 200


def test_floors_are_averaged_over_distinct_splits_and_shown(paired_sweep):
    sweep, _, _ = paired_sweep
    report = build_report(sweep)
    floors = report["floors"]
    assert floors["splits"] == 2  # six jobs, two seeds: two splits
    tfidf = floors["floors"]["tfidf_logreg"]
    assert tfidf["test_macro_f1"]["values"] == [0.30, 0.32] and tfidf["test_macro_auroc"]["mean"] == 0.7
    assert tfidf["test_macro_f1@0.3"]["values"] == []  # a figure a floor lacks is left out, not zero
    paths = write_report(sweep)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "| TF-IDF char 1–3 + LR | 0.3100 ± 0.0141 | 0.4100 ± 0.0141 |" in markdown
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text(encoding="utf-8"))))
    floor_rows = {row["method"]: row for row in rows if row["row"] == "floor"}
    assert [row["row"] for row in rows] == ["arm"] * 3 + ["floor"] * 3 and set(floor_rows) == set(FLOOR_NAMES)
    tfidf_row = floor_rows["tfidf_logreg"]
    assert float(tfidf_row["test_macro_f1_mean"]) == tfidf["test_macro_f1"]["mean"] and tfidf_row["n"] == "2"


def test_the_per_job_rewrite_leaves_the_paired_statistics_to_report_py(paired_sweep):
    sweep, _, _ = paired_sweep
    paths = write_report(sweep, keep_earlier=True)  # what the SweepReport callback calls
    assert "paired_chart" not in paths and not (sweep / "paired.png").exists()
    assert f"run `python report.py {sweep}` for them" in paths["markdown"].read_text(encoding="utf-8")


def test_the_per_job_rewrite_keeps_report_pys_statistics_and_says_when_they_are_behind(paired_sweep):
    """The next job's rewrite erased the verdicts `python report.py` had just written into the sweep."""
    sweep, _, _ = paired_sweep
    spelled_otherwise = sweep.parent / "link"  # report.py given another path to the same sweep
    spelled_otherwise.symlink_to(sweep)
    computed = json.loads(write_report(spelled_otherwise, resamples=200)["json"].read_text(encoding="utf-8"))[
        "paired"
    ]
    paths = write_report(sweep, keep_earlier=True)
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["paired"] == computed
    assert "Computed by" not in paths["markdown"].read_text(encoding="utf-8")
    behind = (
        "Computed by `python report.py` on an earlier state of this sweep (6 finished jobs then, {} now, new "
        "or rerun since): rerun it to bring the paired statistics and paired.png up to date."
    )
    rerun = next(sweep.glob("experiment=plain,seed=0")) / "metrics.json"  # same jobs, one result changed
    rerun.write_text(json.dumps(fake_metrics(0, 0.41)), encoding="utf-8")
    markdown = write_report(sweep, keep_earlier=True)["markdown"].read_text(encoding="utf-8").splitlines()
    assert markdown[4] == behind.format(6)
    fake_job(sweep, 6, ["experiment=plain", "seed=2"], metrics=fake_metrics(2, 0.4))  # one more job ends
    paths = write_report(sweep, keep_earlier=True)
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["paired"] == computed
    markdown = paths["markdown"].read_text(encoding="utf-8").splitlines()
    assert markdown[4] == behind.format(7)
    assert markdown[6].startswith("- **reasoning vs plain**: ") and (sweep / "paired.png").exists()


def test_statistics_of_another_sweep_in_the_same_out_folder_are_not_kept(paired_sweep, tmp_path_factory):
    sweep, _, _ = paired_sweep
    out = tmp_path_factory.mktemp("out")
    write_report(sweep, out, resamples=200)
    other = tmp_path_factory.mktemp("other")
    fake_job(other, 0, ["experiment=plain", "seed=0"], metrics=fake_metrics(0, 0.4))
    paths = write_report(other, out)
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["paired"]["comparisons"] == []
    assert "paired_chart" not in paths and not (out / "paired.png").exists()


def test_the_kote_protocol_columns_come_from_metrics_json(tmp_path):
    metrics = fake_metrics(0, 0.4)
    metrics["test"]["at_0.3"] = metrics["test"]["tuned"] | {"macro_f1": 0.37, "micro_f1": 0.45}
    metrics["test"]["macro_auroc"] = 0.81
    fake_job(tmp_path, 0, ["seed=0"], metrics=metrics)
    fake_job(tmp_path, 1, ["seed=1"], metrics=fake_metrics(1, 0.4))  # from before the KOTE protocol
    cell = build_report(tmp_path)["cells"][0]
    assert cell["metrics"]["test_macro_f1@0.3"]["values"] == [0.37]
    assert cell["metrics"]["test_micro_f1@0.3"]["values"] == [0.45]
    assert cell["metrics"]["test_macro_auroc"]["values"] == [0.81]


def test_a_malformed_predictions_file_is_an_error_naming_file_and_line(tmp_path):
    for num, arm in enumerate(("plain", "reasoning")):
        job = fake_job(tmp_path, num, [f"experiment={arm}", "seed=0"], metrics=fake_metrics(0, 0.4))
        record = {"id": "1", "gold": ["기쁨"], "predicted": ["기쁨" if arm == "plain" else "행복함"]}
        (job / "test_predictions.jsonl").write_text(
            json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    with pytest.raises(
        PredictionsError, match=r"experiment=reasoning,seed=0/test_predictions.jsonl:1: expected a list"
    ):
        build_report(tmp_path, resamples=10)


def test_report_py_with_no_resamples_keeps_no_earlier_statistics(paired_sweep):
    """`python report.py <sweep> --resamples 0` is documented to skip the paired statistics."""
    sweep, _, _ = paired_sweep
    write_report(sweep, resamples=200)
    paths = write_report(sweep)  # report.py --resamples 0
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["paired"]["comparisons"] == []
    assert "paired_chart" not in paths and not (sweep / "paired.png").exists()
