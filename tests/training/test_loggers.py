"""W&B run identity from Hydra overrides, and the per-label and sample-prediction tables."""

import csv
import os
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.loggers import WandbLogger
from omegaconf import OmegaConf

from emoreason.data.kote import KoteRow
from emoreason.evaluation.records import prediction_records
from emoreason.labels import LABELS
from emoreason.training.loggers import (
    CSVLogger,
    ResumedLogs,
    build_loggers,
    continued_wandb_run,
    per_label_table,
    sample_predictions_table,
    wandb_run_identity,
)
from tests.support.sweeps import EXCLUDE_KEYS, fake_metrics


def as_json(records):
    """The records as train passes them to its loggers (the training layer reads plain dicts)."""
    return [r.to_json() for r in records]


OVERRIDES = ["+sweep=tiny_ablation", "seed=1", "experiment=tiny_polyglot_reasoning", "paths.kote_dir=/data"]


def test_a_sweep_job_is_grouped_by_sweep_typed_by_its_cell_and_named_by_its_overrides():
    identity = wandb_run_identity(OVERRIDES, EXCLUDE_KEYS, "multirun/2026-11-28/15-02-11")
    assert identity == {
        "group": "2026-11-28/15-02-11",
        "job_type": "experiment=tiny_polyglot_reasoning",
        "name": "experiment=tiny_polyglot_reasoning,seed=1",
        "tags": ["experiment=tiny_polyglot_reasoning", "seed=1"],
    }
    other_seed = wandb_run_identity([*OVERRIDES[:1], "seed=2", *OVERRIDES[2:]], EXCLUDE_KEYS, "x/2026/a")
    assert other_seed["job_type"] == identity["job_type"] and other_seed["name"] != identity["name"]


def test_a_single_run_has_no_group_and_long_values_are_cut_but_stay_distinct():
    assert wandb_run_identity([], EXCLUDE_KEYS, None) == {
        "group": None,
        "job_type": "train",
        "name": None,
        "tags": [],
    }
    long_a, long_b = "model.config.hidden_size=" + "1" * 60, "model.config.hidden_size=" + "1" * 59 + "2"
    a, b = (wandb_run_identity([line], EXCLUDE_KEYS, None) for line in (long_a, long_b))
    assert len(a["job_type"]) == len(a["tags"][0]) == 64 and a["job_type"] != b["job_type"]


CHECKPOINT_WRITTEN = datetime(2026, 11, 30, 11, 0).timestamp()
"""When the resumed checkpoint was last saved (local time, as W&B's folder names are)."""


def attempts(run_dir, *names):
    """W&B run folders of earlier attempts in ``run_dir/wandb``, and a checkpoint saved at 11:00."""
    for name in names:
        (run_dir / "wandb" / name).mkdir(parents=True)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.touch()
    os.utime(checkpoint, (CHECKPOINT_WRITTEN, CHECKPOINT_WRITTEN))
    return str(checkpoint)


def test_a_fit_resumed_in_its_own_folder_continues_the_wandb_run_of_the_attempt_that_saved_it(tmp_path):
    run = tmp_path / "run"
    ckpt = attempts(run, "run-20261130_101500-second1", "run-20261129_230000-first01", "latest-run")
    assert continued_wandb_run(run, ckpt, offline=False) == "second1"
    assert continued_wandb_run(run, ckpt, offline=True) is None  # offline sync would overwrite the first
    assert continued_wandb_run(run, None, offline=False) is None  # started over: a new run
    elsewhere = attempts(tmp_path / "other", "run-20261130_120000-other01")
    assert continued_wandb_run(run, elsewhere, offline=False) is None  # a checkpoint of another run


def test_a_run_started_in_the_folder_after_the_checkpoint_was_saved_is_never_joined(tmp_path):
    """An evaluation or a retrain that died before saving, run into the folder after the checkpoint."""
    ckpt = attempts(tmp_path, "run-20261130_101500-writer1", "run-20261130_113000-laterrr")
    (tmp_path / "wandb" / "run-20261130_105959-archive.tar.gz").touch()  # a file, not a run folder
    assert continued_wandb_run(tmp_path, ckpt, offline=False) == "writer1"


def test_an_offline_writer_or_none_at_all_starts_a_new_wandb_run(tmp_path):
    ckpt = attempts(tmp_path / "a", "run-20261129_230000-first01", "offline-run-20261130_101500-second1")
    assert continued_wandb_run(tmp_path / "a", ckpt, offline=False) is None
    assert continued_wandb_run(tmp_path / "b", attempts(tmp_path / "b"), offline=False) is None


def test_wandb_run_id_in_the_environment_wins_over_the_continued_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_RUN_ID", "mine")
    monkeypatch.setattr(WandbLogger, "log_hyperparams", lambda self, params: None)
    entry = {"_target_": "lightning.pytorch.loggers.WandbLogger", "save_dir": str(tmp_path)}
    ckpt = attempts(tmp_path, "run-20261129_230000-first01")
    (logger,) = build_loggers(OmegaConf.create({"wandb": entry}), {"ckpt_path": ckpt})
    assert logger._wandb_init["id"] is None  # wandb.init reads WANDB_RUN_ID itself


@pytest.mark.parametrize(
    ("env_mode", "entry", "run_config", "expected"),
    [
        ("online", {}, {}, "first01"),
        ("offline", {}, {}, None),
        ("online", {"mode": "offline"}, {}, None),  # passed on to wandb.init
        ("online", {"id": "mine"}, {}, "mine"),
        ("online", {"fork_from": "first01?_step=2"}, {}, None),  # the user's own choice of run
        ("online", {}, {"train": False}, None),  # a test-only run never joins the training run
    ],
)
def test_build_loggers_passes_the_continued_run_id_only_to_an_online_fit(
    tmp_path, monkeypatch, env_mode, entry, run_config, expected
):
    monkeypatch.setenv("WANDB_MODE", env_mode)
    # log_hyperparams would start the run (wandb.init), which online needs the network
    monkeypatch.setattr(WandbLogger, "log_hyperparams", lambda self, params: None)
    ckpt = attempts(tmp_path, "run-20261129_230000-first01")
    wandb_entry = {"_target_": "lightning.pytorch.loggers.WandbLogger", "save_dir": str(tmp_path), **entry}
    (logger,) = build_loggers(OmegaConf.create({"wandb": wandb_entry}), {"ckpt_path": ckpt, **run_config})
    assert isinstance(logger, WandbLogger) and logger._wandb_init["id"] == expected


def test_per_label_table_has_every_label_at_both_thresholds():
    columns, data = per_label_table(fake_metrics(0, 0.4))
    assert columns == ["label", "f1", "f1@0.5"]
    assert [row[0] for row in data] == list(LABELS) and data[0][1:] == [0.4, 0.2]


def test_sample_predictions_show_labels_above_the_threshold_and_the_rows_reasoning():
    rows = [KoteRow(str(i), f"comment {i}", (0, i % 44), "why" if i % 2 else None) for i in range(10)]
    scores = torch.zeros(10, 44)
    scores[:, 3], scores[:, 5] = 0.9, 0.3  # label 5 sits exactly at the threshold: not predicted
    columns, data = sample_predictions_table(as_json(prediction_records(rows, scores, 0.3)), rows, limit=4)
    assert columns == ["id", "text", "gold", "predicted", "reasoning", "generated"]
    assert [row[0] for row in data] == ["0", "2", "4", "6"]  # spread over the split, at most `limit`
    assert data[1] == ["2", "comment 2", f"{LABELS[0]}, {LABELS[2]}", LABELS[3], "", ""]
    _, odd = sample_predictions_table(as_json(prediction_records(rows[1:2], scores[1:2], 0.3)), rows[1:2])
    assert odd[0][4] == "why"


def test_sample_predictions_show_what_a_generative_method_wrote():
    rows = [KoteRow("a", "comment", (0,))]
    records = prediction_records(rows, torch.zeros(1, 44), 0.5, generated=["이유: ...\n감정: 불평/불만"])
    _, data = sample_predictions_table(as_json(records), rows)
    assert data[0][5] == "이유: ...\n감정: 불평/불만"


def write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=sorted({key for row in rows for key in row}))
        writer.writeheader()
        writer.writerows(rows)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [{k: v for k, v in row.items() if v} for row in csv.DictReader(handle)]


def csv_logger(save_dir: Path, resumed_at: int | None = None) -> CSVLogger:
    logger = CSVLogger(save_dir=str(save_dir), name="csv", version="")
    if resumed_at is not None:
        logger.resumed_at(resumed_at)
    return logger


EARLIER = [
    {"step": 1, "epoch": 0, "val/macro_f1": 0.2},
    {"step": 3, "epoch": 1, "val/macro_f1": 0.3},
    {"step": 4, "test/macro_f1": 0.25},  # the final test of the run, or work after the checkpoint at step 4
]


def test_a_resumed_run_continues_the_csv_log_replacing_what_came_after_its_checkpoint(tmp_path):
    """Lightning deleted metrics.csv when a resumed run opened its folder: every earlier epoch's log lost."""
    write_rows(tmp_path / "csv" / "metrics.csv", EARLIER)
    logger = csv_logger(tmp_path, resumed_at=4)
    logger.log_metrics({"val/macro_f1": 0.35}, step=5)  # the first row comes after the checkpoint's step
    logger.save()
    logger.log_metrics({"train/loss": 0.8, "lr": 1e-4}, step=6)
    logger.save()
    assert read_rows(tmp_path / "csv" / "metrics.csv") == [
        {"step": "1", "epoch": "0", "val/macro_f1": "0.2"},
        {"step": "3", "epoch": "1", "val/macro_f1": "0.3"},
        {"step": "5", "val/macro_f1": "0.35"},
        {"step": "6", "train/loss": "0.8", "lr": "0.0001"},
    ]
    assert not list((tmp_path / "csv").glob("metrics.*.csv"))


@pytest.mark.parametrize("first_step", [0, 2, 9])
def test_a_run_that_does_not_resume_moves_the_earlier_csv_log_aside_whatever_it_logs_first(
    tmp_path, first_step
):
    """Started over (or only evaluating) in a used folder: the earlier log is another run's, kept whole."""
    folder = tmp_path / "csv"
    for attempt in (1, 2):
        write_rows(folder / "metrics.csv", [*EARLIER, {"step": 0, "attempt": attempt}])
        logger = csv_logger(tmp_path)
        logger.log_metrics({"attempt": attempt + 1}, step=first_step)
        logger.save()
        assert read_rows(folder / "metrics.csv") == [{"step": str(first_step), "attempt": str(attempt + 1)}]
        assert len(read_rows(folder / f"metrics.{attempt}.csv")) == len(EARLIER) + 1


@pytest.mark.parametrize(
    "content",
    [
        "step,val/macro_f1\n1,0.2\n".encode("utf-8-sig"),  # a BOM, as spreadsheet programs save it
        "step,비고\n1,감동\n".encode("cp949"),  # re-saved in the Korean Windows code page
        b"step,val/macro_f1\n1\x00,0.2\n",  # a NUL byte (a cut write) in a step
        b"epoch,val/macro_f1\n0,0.2\n",  # no step column
        b"step,val/macro_f1\n1.0,0.2\nlast,0.3\n",  # a step that is no number
        b"",
    ],
)
def test_an_earlier_csv_log_that_cannot_be_continued_never_fails_the_run(tmp_path, content):
    path = tmp_path / "csv" / "metrics.csv"
    path.parent.mkdir()
    path.write_bytes(content)
    logger = csv_logger(tmp_path, resumed_at=2)
    logger.log_metrics({"val/macro_f1": 0.5}, step=2)
    logger.save()
    rows = read_rows(path)
    if content.startswith(b"\xef\xbb\xbf"):  # readable: continued, the BOM not taken into the column name
        assert rows == [{"step": "1", "val/macro_f1": "0.2"}, {"step": "2", "val/macro_f1": "0.5"}]
    else:
        assert rows == [{"step": "2", "val/macro_f1": "0.5"}]
        assert (tmp_path / "csv" / "metrics.1.csv").read_bytes() == content


def test_a_folder_where_the_csv_log_should_be_is_moved_aside_too(tmp_path):
    (tmp_path / "csv" / "metrics.csv").mkdir(parents=True)
    logger = csv_logger(tmp_path, resumed_at=2)
    logger.log_metrics({"val/macro_f1": 0.5}, step=2)
    logger.save()
    assert read_rows(tmp_path / "csv" / "metrics.csv") == [{"step": "2", "val/macro_f1": "0.5"}]
    assert (tmp_path / "csv" / "metrics.1.csv").is_dir()


def test_only_a_checkpoint_in_the_loggers_own_folder_continues_its_log(tmp_path):
    """Resumed from another run's checkpoint into a used folder, the folder's log is another run's."""
    own, other = tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "other" / "last.ckpt"
    for ckpt, expected in ((own, 7), (other, None)):
        logger = csv_logger(tmp_path / "run")
        trainer = SimpleNamespace(ckpt_path=str(ckpt), loggers=[logger])
        ResumedLogs().on_load_checkpoint(trainer, None, {"global_step": 7})
        assert logger.experiment.resume_step == expected
