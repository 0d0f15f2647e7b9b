"""No epoch of work is lost to a monitor: monitors are checked before training, monitoring callbacks are off
without validation, and last.ckpt survives a failure after an epoch (emoreason.training.callbacks)."""

import json
import logging

import lightning as L
import pytest
import torch

from emoreason.config import ConfigError
from emoreason.train import train
from tests.support.project import SMALL_RUN

pytestmark = pytest.mark.shared_data

ROWS = "data.source.max_train_rows=64"  # 2 steps an epoch at batch size 32
QUICK_TEST = "+trainer.limit_test_batches=1"


class FailAt(L.Callback):
    """Raises in ``hook`` of epoch ``epoch`` (of its batch ``batch_idx`` if given): a failure Lightning meets
    late, after or during an epoch."""

    def __init__(self, hook: str, epoch: int = 0, batch_idx: int | None = None) -> None:
        def fail(trainer: L.Trainer, *args: object) -> None:
            if trainer.current_epoch == epoch and batch_idx in (
                None,
                args[-1],
            ):  # batch hooks end in batch_idx
                raise OSError(f"disk full in {hook}")

        setattr(self, hook, fail)


@pytest.fixture
def small_run(compose_train, small_kote_dir):
    def _compose(*overrides):
        return compose_train(*SMALL_RUN, f"paths.kote_dir={small_kote_dir}", ROWS, QUICK_TEST, *overrides)

    return _compose


def test_a_misspelt_monitor_fails_before_training_naming_the_key(small_run, tmp_path):
    with pytest.raises(ConfigError) as failure:
        train(small_run("callbacks.early_stopping.monitor=val/macro_f1_tunned"))
    message = str(failure.value)
    assert message.startswith("callbacks.early_stopping.monitor=val/macro_f1_tunned is never logged")
    assert "val/macro_f1_tuned" in message and "val/loss" in message and "\n" not in message
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "csv").exists()


def test_a_generative_method_has_no_val_loss_to_monitor(small_run, tmp_path):
    cfg = small_run("model=tiny_neox", "method=label_only", "callbacks.model_checkpoint.monitor=val/loss")
    expected = r"^callbacks\.model_checkpoint\.monitor=val/loss is never logged by method label_only;"
    with pytest.raises(ConfigError, match=expected) as e:
        train(cfg)
    assert "val/loss," not in str(e.value) and "val/unparseable_rate" in str(e.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_a_generative_diagnostic_can_be_monitored(small_run, tmp_path):
    """The declared diagnostic names are the keys the method logs: Lightning finds the monitor after val."""
    generative = ("model=tiny_neox", "method=label_only", "method.max_new_tokens=8", "trainer.max_epochs=1")
    few = ("data.loader.eval_batch_size=16", "+trainer.limit_val_batches=1")
    best = "callbacks.model_checkpoint."
    monitors = (
        f"{best}monitor=val/unparseable_rate",
        f"{best}mode=min",
        f"{best}filename=best",
        "callbacks.early_stopping.monitor=val/generated_tokens",
    )
    report = train(small_run(*generative, *few, *monitors))
    assert report["tested_weights"]["monitor"] == "val/unparseable_rate"
    assert report["best_checkpoint"] == str(tmp_path / "run" / "checkpoints" / "best.ckpt")


@pytest.mark.slow
def test_without_validation_monitoring_callbacks_are_off_and_the_last_weights_are_tested_at_0_5(
    small_run, tmp_path, caplog
):
    with caplog.at_level(logging.INFO, logger="emoreason"):
        report = train(small_run("+trainer.limit_val_batches=0", "trainer.max_epochs=1"))
    off = (
        "validation is off (trainer.limit_val_batches=0): callbacks model_checkpoint (val/macro_f1_tuned), "
        "early_stopping (val/macro_f1_tuned) are off;"
    )
    assert any(r.getMessage().startswith(off) for r in caplog.records)
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    assert report["tested_weights"]["weights"] == "end of training" and report["best_checkpoint"] is None
    assert report["threshold"] == 0.5 and "validation is off" in report["threshold_source"]
    assert "val" not in report and report["test"]["rows"] == 128
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["tested_weights"] == report["tested_weights"]


@pytest.mark.slow
def test_a_failure_after_an_epoch_keeps_it_in_last_ckpt_and_the_run_resumes(small_run, tmp_path):
    fail = f"+callbacks.fail._target_={FailAt.__module__}.FailAt"
    with pytest.raises(OSError, match="disk full in on_train_epoch_end"):
        train(small_run(fail, "+callbacks.fail.hook=on_train_epoch_end", "trainer.max_epochs=2"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    assert saved["global_step"] == 2 and saved["epoch"] == 0  # the whole first epoch
    resumed = train(
        small_run(f"ckpt_path={last}", "trainer.max_epochs=2", f"paths.output_dir={tmp_path / 'r'}")
    )
    assert resumed["global_step"] == 4  # one more epoch, not one and a bit


@pytest.mark.slow
@pytest.mark.parametrize(
    ("hook", "batch_idx"),
    [
        ("on_train_batch_end", 0),  # in the middle of the epoch
        ("on_train_batch_start", 1),  # the last batch fetched, its step not taken (Ctrl-C there)
        ("on_validation_batch_end", 0),  # during validation: its metrics would not be in the checkpoint
        ("on_validation_end", None),  # validation not over: Lightning's resume would skip it, and fail
    ],
)
def test_a_failure_before_the_epoch_is_trained_and_validated_leaves_the_previous_last_ckpt(
    small_run, tmp_path, hook, batch_idx
):
    fail = (
        f"+callbacks.fail._target_={FailAt.__module__}.FailAt",
        f"+callbacks.fail.hook={hook}",
        "+callbacks.fail.epoch=1",
        f"+callbacks.fail.batch_idx={'null' if batch_idx is None else batch_idx}",
    )
    with pytest.raises(OSError, match=f"disk full in {hook}"):
        train(small_run(*fail, "trainer.max_epochs=2"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 2  # the end of epoch 0
    if hook == "on_validation_end":  # the case whose resume failed ("val/macro_f1_tuned not available")
        resumed = train(
            small_run(f"ckpt_path={last}", "trainer.max_epochs=2", f"paths.output_dir={tmp_path / 'r'}")
        )
        assert resumed["global_step"] == 4 and resumed["tested_weights"]["weights"] == "best"
