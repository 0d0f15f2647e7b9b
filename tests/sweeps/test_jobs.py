"""run_job: finished jobs are skipped (only with the same config), interrupted ones resume from their
last.ckpt, crashes are recorded and re-raised."""

import csv
import json
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from emoreason.config import ConfigError
from emoreason.sweeps.jobs import resolved_config, run_job
from emoreason.train import train
from emoreason.training.callbacks import REPLACED_CALLBACKS
from emoreason.training.module import EmotionModule
from tests.support.project import SMALL_RUN
from tests.support.sweeps import fake_metrics, wandb_exit_code

OVERRIDES = ["data=kote_plain", "seed=3"]


@pytest.fixture
def cfg(compose_train):
    return compose_train("seed=3")


def finish(output_dir: Path, run_config: dict, macro: float = 0.42) -> dict:
    """Leave output_dir as a finished train() of an older version left it (metrics.json without a version)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(run_config), output_dir / "config.yaml")
    payload = fake_metrics(3, macro)
    (output_dir / "metrics.json").write_text(json.dumps(payload), encoding="utf-8")
    return payload


def must_not_run(cfg):
    raise AssertionError("a finished job ran again")


def test_a_finished_job_is_skipped_even_when_only_loggers_or_tags_changed(cfg, compose_train):
    out = Path(cfg.paths.output_dir)
    stored = finish(out, resolved_config(cfg))
    relogged = compose_train("seed=3", "logger=csv", "tags=[rerun]")
    skipped = run_job(relogged, must_not_run, output_dir=out, overrides=OVERRIDES, skip_finished=True)
    assert skipped["schema_version"] == 0 and skipped["seed"] == stored["seed"]
    assert skipped["test"]["tuned"] == stored["test"]["tuned"] | {"macro_f1_supported": None}


def test_a_changed_config_or_a_single_run_trains_again_from_a_clean_folder(cfg, compose_train):
    out = Path(cfg.paths.output_dir)
    finish(out, resolved_config(cfg))
    calls = []

    def task(c):
        left = [
            name
            for name in ("metrics.json", "test_predictions.jsonl", "floors.json")
            if (out / name).exists()
        ]
        assert not left, f"the previous result must be gone before the rerun: {left}"
        calls.append(c.optim.lr)
        return {"fresh": True}

    for name in ("test_predictions.jsonl", "floors.json"):  # a report would read them as this run's
        (out / name).write_text("{}\n", encoding="utf-8")

    changed = compose_train("seed=3", "optim.lr=0.5")
    assert run_job(changed, task, output_dir=out, overrides=OVERRIDES, skip_finished=True) == {"fresh": True}
    finish(out, resolved_config(cfg))
    assert run_job(cfg, task, output_dir=out, overrides=OVERRIDES, skip_finished=False) == {"fresh": True}
    assert calls == [0.5, cfg.optim.lr]


def test_a_crash_is_recorded_with_its_traceback_and_re_raised(cfg):
    out = Path(cfg.paths.output_dir)
    finish(out, resolved_config(cfg))

    def exploding_task(c):
        raise ValueError("Invalid learning rate: -1.0")

    with pytest.raises(ValueError, match="Invalid learning rate"):
        run_job(cfg, exploding_task, output_dir=out, overrides=OVERRIDES, skip_finished=False)
    failure = json.loads((out / "failure.json").read_text(encoding="utf-8"))
    assert failure["error"] == "ValueError" and failure["message"] == "Invalid learning rate: -1.0"
    assert failure["overrides"] == OVERRIDES and "exploding_task" in failure["traceback"]
    assert not (out / "metrics.json").exists()


@pytest.mark.shared_data
def test_a_job_that_crashes_ends_its_wandb_run_with_a_nonzero_exit_code(compose_train, monkeypatch):
    """W&B showed a crashed job as finished (exit code 0) while failure.json said it failed."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)

    def crash(*_args, **_kwargs):
        raise ValueError("disk full in the first training step")

    monkeypatch.setattr(EmotionModule, "training_step", crash)  # in fit, after W&B started
    bad = compose_train(*SMALL_RUN, "data.source.max_train_rows=64", "logger=wandb")
    out = Path(bad.paths.output_dir)
    with pytest.raises(ValueError, match="disk full"):
        run_job(bad, train, output_dir=out, overrides=[], skip_finished=True)
    assert json.loads((out / "failure.json").read_text(encoding="utf-8"))["error"] == "ValueError"
    assert wandb_exit_code(out) == 1


def test_a_success_clears_the_previous_attempts_failure(cfg):
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True)
    (out / "failure.json").write_text("{}", encoding="utf-8")
    run_job(cfg, lambda c: {}, output_dir=out, overrides=OVERRIDES, skip_finished=True)
    assert not (out / "failure.json").exists()


def test_a_config_error_is_recorded_too(compose_train):
    bad = compose_train("optim.lr=fast")
    out = Path(bad.paths.output_dir)
    with pytest.raises(ConfigError, match="lr"):
        run_job(bad, must_not_run, output_dir=out, overrides=["optim.lr=fast"], skip_finished=True)
    assert json.loads((out / "failure.json").read_text(encoding="utf-8"))["error"] == "ConfigError"


def test_a_job_finished_before_optim_was_a_target_is_skipped(cfg):
    """config.yaml of a run from before conf/optim and conf/scheduler were targets: the same run."""
    out = Path(cfg.paths.output_dir)
    before = resolved_config(cfg)
    optim = {k: v for k, v in before["optim"].items() if not k.startswith("_")}
    before["optim"] = {**optim, "warmup_ratio": before.pop("scheduler")["warmup_ratio"]}
    stored = finish(out, before)
    skipped = run_job(cfg, must_not_run, output_dir=out, overrides=OVERRIDES, skip_finished=True)
    assert skipped["seed"] == stored["seed"]


def seen_checkpoint(calls: list):
    """A task that records the ``ckpt_path`` it was given."""

    def task(c):
        calls.append(c.ckpt_path)
        return {}

    return task


def interrupted(cfg) -> Path:
    """cfg's folder as a job killed after an epoch leaves it: config.yaml, then checkpoints/last.ckpt."""
    out = Path(cfg.paths.output_dir)
    last = out / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(resolved_config(cfg)), out / "config.yaml")  # train() writes it first
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, last)
    return last


def test_an_interrupted_job_resumes_from_its_last_checkpoint_unless_ckpt_path_is_set(cfg, compose_train):
    out, last = Path(cfg.paths.output_dir), interrupted(cfg)
    calls: list = []
    run_job(cfg, seen_checkpoint(calls), output_dir=out, overrides=OVERRIDES, skip_finished=True)
    single_run = {"output_dir": out, "overrides": OVERRIDES, "skip_finished": False}  # not a multirun
    run_job(cfg, seen_checkpoint(calls), **single_run)
    elsewhere = out.parent / "elsewhere.ckpt"
    by_hand = compose_train("seed=3", f"ckpt_path={elsewhere}")
    run_job(by_hand, seen_checkpoint(calls), output_dir=out, overrides=OVERRIDES, skip_finished=True)
    assert calls == [str(last), None, str(elsewhere)] and last.exists()


def test_another_configs_checkpoint_is_set_aside_not_resumed(cfg, compose_train, caplog):
    """A job rerun with a changed config and killed before its first epoch ended resumed, on the next
    rerun, from the old config's last.ckpt, and reported that model's figures as the new config's."""
    out, last = Path(cfg.paths.output_dir), interrupted(cfg)
    calls: list = []
    changed = compose_train("seed=3", "optim.lr=0.5")
    run_job(changed, seen_checkpoint(calls), output_dir=out, overrides=OVERRIDES, skip_finished=True)
    assert calls == [None] and not last.exists() and (out / "checkpoints.stale" / "last.ckpt").is_file()
    aside = f"another config wrote it (optim differ); moving {last.parent} to {out}/checkpoints.stale"
    assert f"from {last}: {aside}" in caplog.text
    trusting = compose_train("seed=3", "optim.lr=0.5", "trust_checkpoint=true")  # what a refusal asks for
    last.parent.mkdir()
    OmegaConf.save(OmegaConf.create(resolved_config(changed)), out / "config.yaml")
    torch.save({"state_dict": {"w": torch.zeros(2)}}, last)
    run_job(trusting, seen_checkpoint(calls), output_dir=out, overrides=OVERRIDES, skip_finished=True)
    assert calls[-1] == str(last)  # trust_checkpoint alone does not make it another config's checkpoint


def test_an_unreadable_checkpoint_of_the_same_config_is_left_and_the_job_starts_over(cfg, caplog):
    out, last = Path(cfg.paths.output_dir), interrupted(cfg)
    last.write_bytes(last.read_bytes()[:300])  # killed while writing it
    calls: list = []
    run_job(cfg, seen_checkpoint(calls), output_dir=out, overrides=OVERRIDES, skip_finished=True)
    assert calls == [None] and last.exists()  # the new attempt overwrites it after its first epoch
    assert f"not resuming the interrupted job in {out}: {last}: not a readable checkpoint" in caplog.text


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_job_killed_after_an_epoch_resumes_there_and_a_rerun_then_skips_it(
    compose_train, small_kote_dir, tmp_path
):
    """A sweep job killed in its second epoch started over from epoch 0 on the rerun: hours lost on a GPU."""
    epochs, marker = tmp_path / "epochs.txt", tmp_path / "marker"
    marker.touch()
    interrupt = compose_train(
        *SMALL_RUN,
        f"paths.kote_dir={small_kote_dir}",
        "data.source.max_train_rows=64",
        "trainer.max_epochs=2",
        "~callbacks.early_stopping",
        "+callbacks.interrupt._target_=tests.support.callbacks.InterruptOnce",
        f"+callbacks.interrupt.epochs_file={epochs}",
        f"+callbacks.interrupt.marker={marker}",
        "+callbacks.interrupt.epoch=1",
    )
    out = Path(interrupt.paths.output_dir)
    with pytest.raises(RuntimeError, match="interrupted at the start of epoch 1"):
        run_job(interrupt, train, output_dir=out, overrides=[], skip_finished=True)
    assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "failure.json").is_file()

    report = run_job(interrupt, train, output_dir=out, overrides=[], skip_finished=True)
    assert epochs.read_text(encoding="utf-8").split() == ["0", "1", "1"]  # epoch 0 was not trained again
    with (out / "csv" / "metrics.csv").open(encoding="utf-8") as handle:
        validated = [row["epoch"] for row in csv.DictReader(handle) if row.get("val/macro_f1_tuned")]
    assert validated == ["0", "1"]  # the log of the epoch before the interruption is kept
    assert report["tested_weights"]["weights"] == "best" and not (out / "failure.json").exists()
    assert OmegaConf.load(out / "config.yaml").ckpt_path == str(out / "checkpoints" / "last.ckpt")
    skipped = run_job(interrupt, must_not_run, output_dir=out, overrides=[], skip_finished=True)
    assert skipped["global_step"] == report["global_step"]


def test_a_job_finished_with_stock_early_stopping_is_skipped(cfg):
    """Before ResumableEarlyStopping, config.yaml named Lightning's: the same results, so not run again."""
    assert all(issubclass(get_class(new), get_class(old)) for old, new in REPLACED_CALLBACKS.items())
    out = Path(cfg.paths.output_dir)
    before = resolved_config(cfg)
    before["callbacks"]["early_stopping"]["_target_"] = "lightning.pytorch.callbacks.EarlyStopping"
    stored = finish(out, before)
    skipped = run_job(cfg, must_not_run, output_dir=out, overrides=OVERRIDES, skip_finished=True)
    assert skipped["seed"] == stored["seed"]
