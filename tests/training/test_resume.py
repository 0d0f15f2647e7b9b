"""Resuming keeps model selection honest: the earlier best score and file carry over, and what is tested is
said in metrics.json (emoreason.training.callbacks.BestCheckpoint, train._best_weights)."""

import csv
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from emoreason.train import train
from emoreason.training.callbacks import BestCheckpoint, ResumableEarlyStopping
from emoreason.training.callbacks import log as callbacks_log
from tests.support.project import SMALL_RUN

pytestmark = pytest.mark.shared_data

MONITOR = "val/macro_f1_tuned"
ROWS = "data.source.max_train_rows=64"  # 2 steps an epoch at batch size 32
QUICK_TEST = "+trainer.limit_test_batches=1"  # final scoring of 128 test rows, not 600


@pytest.fixture
def run_into(compose_train, small_kote_dir, tmp_path):
    """train() into tmp_path/<name> with the small data; returns the metrics.json payload."""

    def _run(name, *overrides):
        out = f"paths.output_dir={tmp_path / name}"
        return train(
            compose_train(*SMALL_RUN, f"paths.kote_dir={small_kote_dir}", ROWS, QUICK_TEST, out, *overrides)
        )

    return _run


def epoch_scores(run_dir: Path) -> list[float]:
    """The monitor's value at each validation of a run, from its CSV log."""
    (metrics,) = run_dir.rglob("metrics.csv")
    with metrics.open(encoding="utf-8") as handle:
        return [float(row[MONITOR]) for row in csv.DictReader(handle) if row.get(MONITOR)]


def claim_best_score(last_ckpt: Path, score: float) -> None:
    """Rewrite the checkpoint's selection state as if its best epoch had scored ``score``."""
    checkpoint = torch.load(last_ckpt, weights_only=False)
    (key,) = [k for k in checkpoint["callbacks"] if k.startswith("BestCheckpoint")]
    state = checkpoint["callbacks"][key]
    state["best_model_score"] = state["kth_value"] = torch.tensor(score)
    state["best_k_models"] = dict.fromkeys(state["best_k_models"], torch.tensor(score))
    torch.save(checkpoint, last_ckpt)


def test_a_resume_into_a_new_folder_keeps_the_earlier_best_score_to_beat(tmp_path):
    """Stock ModelCheckpoint forgets the score when the folder changes: a worse epoch then becomes best."""
    old_dir, new_dir = tmp_path / "first" / "checkpoints", tmp_path / "second" / "checkpoints"
    old_dir.mkdir(parents=True)
    best = old_dir / "epoch00-macro_f10.4000.ckpt"
    best.write_bytes(b"weights")
    score = torch.tensor(0.4)
    state = ModelCheckpoint(dirpath=str(old_dir), monitor=MONITOR, mode="max").state_dict()
    state |= {
        "best_model_score": score,
        "best_model_path": str(best),
        "best_k_models": {str(best): score},
        "kth_best_model_path": str(best),
        "kth_value": score,
    }
    strategy = SimpleNamespace(reduce_boolean_decision=lambda decision, **_: decision)
    trainer = SimpleNamespace(ckpt_path=str(old_dir / "last.ckpt"), strategy=strategy)
    ours, stock = (
        c(dirpath=str(new_dir), monitor=MONITOR, mode="max") for c in (BestCheckpoint, ModelCheckpoint)
    )
    ours.on_load_checkpoint(trainer, None, {})
    for callback in (ours, stock):
        callback.load_state_dict(dict(state))
    assert stock.check_monitor_top_k(trainer, torch.tensor(0.3))  # the failure: 0.3 would become best
    assert not ours.check_monitor_top_k(trainer, torch.tensor(0.3))
    assert ours.check_monitor_top_k(trainer, torch.tensor(0.5))
    assert ours.best_model_path == str(best) and float(ours.best_model_score) == pytest.approx(0.4)


@pytest.mark.slow
def test_resume_with_more_epochs_tests_the_best_epoch_of_both_runs(run_into, tmp_path):
    first = run_into("first", "trainer.max_epochs=1")
    (best_first,) = (tmp_path / "first" / "checkpoints").glob("epoch00-*.ckpt")
    score = pytest.approx(epoch_scores(tmp_path / "first")[0], abs=1e-6)
    tested = {"weights": "best", "checkpoint": str(best_first), "monitor": MONITOR, "score": score}
    assert first["tested_weights"] == tested
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    claim_best_score(last, 0.99)  # an earlier epoch no later one can beat
    resumed = run_into("second", f"ckpt_path={last}", "trainer.max_epochs=3")
    assert len(epoch_scores(tmp_path / "second")) == 2 and max(epoch_scores(tmp_path / "second")) < 0.99
    assert resumed["tested_weights"]["checkpoint"] == resumed["best_checkpoint"] == str(best_first)
    assert resumed["tested_weights"]["score"] == pytest.approx(0.99)
    assert not list((tmp_path / "second" / "checkpoints").glob("epoch*.ckpt"))  # no worse "best" saved
    assert best_first.exists()  # a file of another run is never deleted


@pytest.mark.slow
def test_a_moved_run_resumes_with_its_best_checkpoint_found_beside_last_ckpt(run_into, tmp_path, caplog):
    first = run_into("first", "trainer.max_epochs=1")
    shutil.move(tmp_path / "first", tmp_path / "moved")
    moved = tmp_path / "moved" / "checkpoints"
    with caplog.at_level(logging.WARNING, logger="emoreason"):
        resumed = run_into("second", f"ckpt_path={moved / 'last.ckpt'}", "trainer.max_epochs=1")
    expected = str(moved / Path(first["best_checkpoint"]).name)
    assert resumed["best_checkpoint"] == expected and resumed["tested_weights"]["weights"] == "best"
    assert resumed["tested_weights"]["score"] == first["tested_weights"]["score"]
    assert resumed["test"] == first["test"]  # the same weights tested, so the same figures
    assert any("was the run folder moved?" in r.getMessage() for r in caplog.records)

    Path(expected).unlink()  # the best file is gone altogether: said loudly, and in metrics.json
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="emoreason"):
        lost = run_into("third", f"ckpt_path={moved / 'last.ckpt'}", "trainer.max_epochs=1")
    assert lost["best_checkpoint"] is None
    assert lost["tested_weights"]["weights"] == "end of training"
    assert Path(first["best_checkpoint"]).name in lost["tested_weights"]["reason"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("is gone" in w and Path(expected).name in w for w in warnings)


@pytest.mark.slow
def test_a_resume_with_more_epochs_follows_the_schedule_of_the_new_length(run_into, tmp_path):
    """What docs/README say: warmup/decay are recomputed for the new max_epochs; the step count carries on."""
    run_into("first", "trainer.max_epochs=1", "trainer.log_every_n_steps=1")
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    run_into("second", f"ckpt_path={last}", "trainer.max_epochs=3", "trainer.log_every_n_steps=1")
    (metrics,) = (tmp_path / "second").rglob("metrics.csv")
    with metrics.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("lr-AdamW/pg1")]
    rates = [(int(row["step"]), float(row["lr-AdamW/pg1"])) for row in rows]
    lr, total = 5e-4, 6  # 3 epochs x 2 steps, warmup int(0.1 x 6) = 0 steps
    assert rates[0] == (2, 0.0)  # the first resumed step still runs at the first schedule's end value
    assert rates[1:] == [(step, pytest.approx(lr * (total - step) / total)) for step in (3, 4, 5)]


@pytest.mark.slow
def test_a_run_that_stopped_early_and_is_resumed_trains_no_further_unless_patience_allows(run_into, tmp_path):
    """A run killed after it had stopped early (during its test, say) resumes to test what it would have.
    Its checkpoint is the stock callback's (as before ResumableEarlyStopping), whose state ours reads too."""
    never_better = ("callbacks.early_stopping.patience=1", "+callbacks.early_stopping.min_delta=1.0")
    stock = "callbacks.early_stopping._target_=lightning.pytorch.callbacks.EarlyStopping"
    first = run_into("first", "trainer.max_epochs=4", *never_better, stock)
    assert first["global_step"] == 4  # epoch 0 sets the score, epoch 1 fails to beat it by 1.0: stop
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = run_into("second", f"ckpt_path={last}", "trainer.max_epochs=4", *never_better)
    assert resumed["global_step"] == 4 and not epoch_scores(tmp_path / "second")  # no epoch trained
    assert resumed["test"] == first["test"] and resumed["tested_weights"] == first["tested_weights"]
    patient = run_into("third", f"ckpt_path={last}", "trainer.max_epochs=4", never_better[1])  # patience 3
    assert patient["global_step"] == 8  # waits 2 and 3 in epochs 2 and 3, the last of max_epochs


def early_stopping_resumed(patience: int, stored: dict[str, object]) -> tuple[SimpleNamespace, list[str]]:
    """A ResumableEarlyStopping configured with ``patience``, its state loaded from a checkpoint's ``stored``
    entries over a fresh callback's; the trainer it starts training for, and what it logged."""
    state = EarlyStopping(monitor=MONITOR, mode="max").state_dict() | stored
    callback = ResumableEarlyStopping(monitor=MONITOR, mode="max", patience=patience)
    callback.load_state_dict(state)
    trainer = SimpleNamespace(should_stop=False)
    with pytest.MonkeyPatch.context() as patch:
        said: list[str] = []
        patch.setattr(callbacks_log, "info", lambda message, *args: said.append(message % args))
        callback.on_train_start(trainer, None)
    return trainer, said


EXHAUSTED = EarlyStoppingReason.PATIENCE_EXHAUSTED.value


@pytest.mark.parametrize(
    ("patience", "stored", "stops"),
    [
        # stopped at epoch 1, then min_epochs ran it on and it improved: Lightning's stop still stands
        (1, {"wait_count": 0, "patience": 1, "stopped_epoch": 2, "stopping_reason": EXHAUSTED}, True),
        (3, {"wait_count": 1, "patience": 1, "stopped_epoch": 1, "stopping_reason": EXHAUSTED}, False),
        (2, {"wait_count": 2, "patience": 2, "stopped_epoch": 3, "stopping_reason": EXHAUSTED}, True),
        (
            9,
            {"wait_count": 0, "patience": 3, "stopping_reason": EarlyStoppingReason.STOPPING_THRESHOLD.value},
            True,
        ),
        (1, {"wait_count": 3, "patience": 5}, True),  # running, resumed with less patience than it waited
        (5, {"wait_count": 3, "patience": 5}, False),
    ],
)
def test_a_resumed_run_stops_where_the_uninterrupted_run_with_its_configured_patience_would(
    patience, stored, stops
):
    trainer, said = early_stopping_resumed(patience, stored)
    assert trainer.should_stop is stops
    assert bool(said) is (
        stops or stored.get("stopping_reason") == EXHAUSTED
    )  # a stop held or lifted is said


def test_early_stopping_keeps_the_stock_callbacks_state_key():
    ours, stock = (c(monitor=MONITOR, mode="max") for c in (ResumableEarlyStopping, EarlyStopping))
    assert ours.state_key == stock.state_key


@pytest.mark.slow
def test_a_run_resumed_in_its_own_folder_continues_its_csv_log(run_into, tmp_path):
    """Lightning deleted csv/metrics.csv on such a resume; the first run's final test row (logged at the
    checkpoint's step) is the one row the resumed run replaces. Offline, each attempt is its own W&B run
    (the continued online run: tests/training/test_loggers.py)."""
    run_into("run", "trainer.max_epochs=1", "logger=wandb")
    resume = f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}"
    run_into("run", resume, "trainer.max_epochs=2", "logger=wandb")
    run_ids = {p.name.rsplit("-", 1)[1] for p in (tmp_path / "run" / "wandb").glob("offline-run-*")}
    assert len(run_ids) == 2
    with (tmp_path / "run" / "csv" / "metrics.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows if row.get(MONITOR)] == ["0", "1"]
    assert [row["step"] for row in rows if row.get("test/macro_f1")] == ["4"]
    assert not list((tmp_path / "run" / "csv").glob("metrics.*.csv"))
