"""``train.py -m`` end to end on CPU with tiny models, run as a subprocess as a user runs it: a 2 × 2 × 1
ablation with its report and W&B runs, a rerun that skips every finished job, and a crash."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emoreason.data.kote import read_kote_tsv
from emoreason.labels import label_names
from emoreason.training.loggers import truncate_distinct
from tests.support.project import REPO
from tests.support.sweeps import run_train, wandb_run

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

SMALL_DATA = ["data.source.holdout_size=200", "data.source.max_train_rows=64"]
PREFIX = ",".join(SMALL_DATA)
"""Job folder names start with these overrides (names are the sorted overrides)."""
GRID = {
    f"{PREFIX},data={data},model={model},seed=0": (data, model)
    for data in ("kote_plain", "kote_reasoning")
    for model in ("tiny_electra", "tiny_neox")
}


@pytest.fixture(scope="module")
def reasoning(small_kote_dir, tmp_path_factory) -> dict[str, str]:
    """A reasoning dataset for every comment of the small KOTE copy (test rows too, to show in W&B)."""
    records = []
    for split in ("val", "test"):
        for row in read_kote_tsv(small_kote_dir / f"{split}.tsv"):
            reason = f"{row.id}번 댓글의 말투에서 감정이 드러난다."
            records.append(
                {"id": row.id, "text": row.text, "labels": label_names(row.labels), "reasoning": reason}
            )
    path = tmp_path_factory.mktemp("reasoning") / "reasoning.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return {"KOTE_REASONING_PATH": str(path)}


@pytest.fixture(scope="module")
def tiny_args(small_kote_dir, cache_dir) -> list[str]:
    """The tiny_ablation preset on the small KOTE copy with 64 training rows and its grid emptied."""
    return [
        "+sweep=tiny_ablation",
        f"paths.kote_dir={small_kote_dir}",
        f"paths.cache_dir={cache_dir}",
        *SMALL_DATA,
        "data.source.verify_checksums=false",
        "data.source.download=false",
        "~callbacks.progress_bar",
        "~hydra.sweeper.params.experiment",
        "hydra.sweeper.params.seed=0",
    ]


@pytest.fixture(scope="module")
def ablation(tiny_args, reasoning, tmp_path_factory) -> tuple[Path, list[str]]:
    """data × model × seed = 2 × 2 × 1 with the classifier, W&B offline; its folder and arguments."""
    sweep_dir = tmp_path_factory.mktemp("multirun") / "2026-11-28" / "15-02-11"
    grid = ["data=kote_plain,kote_reasoning", "model=tiny_electra,tiny_neox"]
    args = [*tiny_args, *grid, "logger=wandb", f"hydra.sweep.dir={sweep_dir}"]
    done = run_train("-m", *args, env=reasoning)
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep_dir, args


def metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text(encoding="utf-8"))


def test_every_job_finishes_in_a_folder_named_by_its_overrides(ablation):
    sweep_dir, _ = ablation
    assert {p.name for p in sweep_dir.iterdir() if p.is_dir()} == set(GRID)
    for name, (data, model) in GRID.items():
        saved = metrics(sweep_dir / name)
        assert (
            saved["seed"] == 0
            and saved["model"] == {"tiny_electra": "tiny-electra", "tiny_neox": "tiny-gpt_neox"}[model]
        )
        assert ("reasoning" in saved["data_sources"]) == (data == "kote_reasoning")


def test_the_report_holds_each_jobs_numbers(ablation):
    sweep_dir, _ = ablation
    report = json.loads((sweep_dir / "report.json").read_text(encoding="utf-8"))
    markdown = (sweep_dir / "report.md").read_text(encoding="utf-8")
    assert len(report["cells"]) == 4 and {j["status"] for j in report["jobs"]} == {"finished"}
    for cell in report["cells"]:
        data, model = cell["choices"]["data"], cell["choices"]["model"]
        job = metrics(sweep_dir / next(name for name, key in GRID.items() if key == (data, model)))
        test = job["test"]["tuned"]["macro_f1"]
        assert cell["n"] == 1 and cell["seeds"] == [0]
        assert cell["metrics"]["test_macro_f1"]["values"] == [test]
        assert cell["metrics"]["test_macro_f1@0.5"]["mean"] == job["test"]["at_0.5"]["macro_f1"]
        assert cell["metrics"]["val_macro_f1"]["mean"] == job["val"]["tuned"]["macro_f1"]
        assert f"| {data} | {model} | classifier | 1 | 0 | {test:.4f} |" in markdown
    assert (sweep_dir / "fig3.png").stat().st_size > 10_000 and (sweep_dir / "report.csv").exists()
    floors = [json.loads((sweep_dir / name / "floors.json").read_text(encoding="utf-8")) for name in GRID]
    assert len({f["key"] for f in floors}) == 1  # the same 64 training rows in every job: one split
    tfidf = floors[0]["floors"]["tfidf_logreg"]["test"]["tuned"]["macro_f1"]
    assert report["floors"]["splits"] == 1
    assert report["floors"]["floors"]["tfidf_logreg"]["test_macro_f1"]["values"] == [tfidf]


def test_report_py_adds_a_paired_verdict_for_every_two_arms(ablation):
    sweep_dir, _ = ablation
    command = [sys.executable, "report.py", str(sweep_dir), "--resamples", "50"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((sweep_dir / "report.json").read_text(encoding="utf-8"))
    comparisons = report["paired"]["comparisons"]
    assert len(comparisons) == 6 and all(c["comments"] == 600 and c["seeds"] == [0] for c in comparisons)
    lines = (sweep_dir / "report.md").read_text(encoding="utf-8").splitlines()
    verdicts = [line for line in lines if line.startswith("- **")]
    assert len(verdicts) == 6 and all(" macro-F1 [" in line and "micro-F1 [" in line for line in verdicts)
    assert (sweep_dir / "paired.png").exists()


def test_each_job_is_its_own_wandb_run_in_the_sweeps_group_with_tables(ablation):
    sweep_dir, _ = ablation
    run_ids = set()
    for name, (data, model) in GRID.items():
        job = sweep_dir / name
        run, summary = wandb_run(job)
        run_ids.add(run.run_id)
        assert run.run_group == "2026-11-28/15-02-11" and run.display_name == name
        cell = f"{PREFIX},data={data},model={model}"  # the cell: no seed
        assert run.job_type == truncate_distinct(cell, 64)
        assert f"model={model}" in run.tags and "seed=0" in run.tags
        assert summary["test/macro_f1"] == pytest.approx(metrics(job)["test"]["tuned"]["macro_f1"])
        assert summary["test/per_label_f1/nrows"] == 44 and summary["test/sample_predictions/nrows"] == 64
        table_file = next(job.glob("wandb/offline-run-*/files/media/table/test/sample_predictions_*.json"))
        table = json.loads(table_file.read_text(encoding="utf-8"))
        assert table["columns"] == ["id", "text", "gold", "predicted", "reasoning", "generated"]
        assert all(row[5] == "" for row in table["data"])  # classifiers write no text
        with_reasoning = [row for row in table["data"] if row[4]]
        assert len(with_reasoning) == (64 if data == "kote_reasoning" else 0)
        assert all(row[4].startswith(f"{row[0]}번") for row in with_reasoning)
    assert len(run_ids) == len(GRID)


def test_a_rerun_of_a_finished_sweep_skips_every_job(ablation, reasoning):
    sweep_dir, args = ablation
    before = {name: (sweep_dir / name / "metrics.json").read_bytes() for name in GRID}
    rerun = run_train("-m", *args, env=reasoning)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (rerun.stdout + rerun.stderr).count("skipping finished job") == len(GRID)
    for name in GRID:
        assert (sweep_dir / name / "metrics.json").read_bytes() == before[name]
        assert len(list((sweep_dir / name / "wandb").glob("offline-run-*"))) == 1  # no new W&B run


def test_a_crash_is_recorded_the_others_finish_and_a_rerun_retries_only_it(tiny_args, tmp_path):
    args = [*tiny_args, "optim.lr=1e-3,-1", "logger=csv", f"hydra.sweep.dir={tmp_path}"]
    ok, crashed = (tmp_path / f"{PREFIX},optim.lr={lr},seed=0" for lr in ("0.001", "-1"))
    first = run_train("-m", *args, env={})
    assert first.returncode == 2  # re-raised once every job has run; a config error is the user's (exit 2)
    failure = json.loads((crashed / "failure.json").read_text(encoding="utf-8"))
    assert failure["error"] == "ConfigError" and "optim: Invalid learning rate" in failure["message"]
    assert (ok / "metrics.json").exists() and not (crashed / "metrics.json").exists()
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Jobs without results (1 of 2)" in report
    assert "ConfigError: optim: Invalid learning rate" in report
    finished = (ok / "metrics.json").read_bytes()

    second = run_train("-m", *args, env={})
    assert second.returncode == 2
    assert (second.stdout + second.stderr).count("skipping finished job") == 1
    assert (ok / "metrics.json").read_bytes() == finished
    assert (crashed / "train.log").read_text(encoding="utf-8").count("job failed") == 2


def test_a_job_whose_overrides_are_too_long_for_a_file_name_runs_and_a_rerun_skips_it(tiny_args, tmp_path):
    tags = "[" + ",".join(f"ablation-arm-{i:03d}" for i in range(20)) + "]"  # 300+ bytes of overrides
    args = [*tiny_args, f"tags={tags}", "logger=csv", f"hydra.sweep.dir={tmp_path}"]
    first = run_train("-m", *args, env={})
    assert first.returncode == 0, first.stderr[-3000:]
    (job,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(job.name.encode()) <= 200 and job.name.startswith(PREFIX) and (job / "metrics.json").exists()
    again = run_train("-m", *args, env={})
    assert again.returncode == 0 and (again.stdout + again.stderr).count("skipping finished job") == 1
