"""User errors at the command line: one line on stderr, exit 2; a traceback only with HYDRA_FULL_ERROR=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, InstantiationException

from emoreason import cli
from emoreason.data.kote import KoteFormatError
from emoreason.sweeps.collect import NotASweepError
from tests.support.project import REPO, SMALL_RUN


def run_entry(*argv: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", cli._FULL_ERROR_ASKED)
    }
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, env={**environment, **(env or {})}, capture_output=True, text=True
    )


def error_lines(stderr: str, program: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{program}: error:")]


def test_guard_turns_a_user_error_into_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def entry():
        raise KoteFormatError("val.tsv line 7: 3 fields expected, got 2\n  fix the file or re-download it")

    with pytest.raises(SystemExit) as exited:
        cli.guard(entry)
    assert exited.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert "val.tsv line 7: 3 fields expected, got 2; fix the file or re-download it" in err[0]
    assert "HYDRA_FULL_ERROR" not in os.environ  # restored after the run


def test_guard_leaves_bugs_and_exit_codes_of_the_entry_point_alone(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(ZeroDivisionError):
        cli.guard(lambda: 1 / 0)

    def rerun_to_continue():
        raise SystemExit(1)  # generate.py: items still missing

    with pytest.raises(SystemExit) as exited:
        cli.guard(rerun_to_continue)
    assert exited.value.code == 1


def test_guard_reraises_a_user_error_when_the_traceback_is_asked_for(monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.delenv(cli._FULL_ERROR_ASKED, raising=False)
    with pytest.raises(NotASweepError):
        cli.guard(lambda: (_ for _ in ()).throw(NotASweepError("x is not a folder")))


def test_instantiation_errors_are_user_errors_only_over_bad_arguments_or_user_errors():
    bad_key = InstantiationException("Error in call to target 'X': TypeError(...)\nfull_key: model")
    bad_key.__cause__ = TypeError("X.__init__() got an unexpected keyword argument 'foo'")
    bug = InstantiationException("Error in call to target 'X': KeyError('y')")
    bug.__cause__ = KeyError("y")
    assert cli.is_user_error(bad_key)
    assert not cli.is_user_error(bug)
    assert cli.is_user_error(ConfigCompositionException("Could not override 'foo'."))


def test_one_line_drops_hydras_search_path_listing():
    exc = ConfigCompositionException(
        "In 'train': Could not find 'model/nope'\n\nAvailable options in 'model':\n\ttiny_electra\n"
        "Config search path:\n\tprovider=hydra, path=pkg://hydra.conf"
    )
    assert cli.one_line(exc) == (
        "In 'train': Could not find 'model/nope'; Available options in 'model': tiny_electra"
    )


@pytest.fixture(scope="module")
def single_run_dir(tmp_path_factory) -> Path:
    """A folder train.py writes in a single run (``.hydra/hydra.yaml`` with mode RUN), without training."""
    folder = tmp_path_factory.mktemp("single") / "outputs" / "2026-01-01" / "00-00-00"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "hydra.yaml").write_text("hydra:\n  mode: RUN\n", encoding="utf-8")
    return folder


USER_ERRORS = [
    # (what, argv, the phrase its one line must hold)
    (
        "missing data",
        ["train.py", "paths.kote_dir=/nonexistent", "data.source.download=false"],
        "/nonexistent",
    ),
    ("key not in the config", ["train.py", "optim.lrr=1"], "Could not override 'optim.lrr'"),
    ("wrong value type", ["train.py", "seed=abc"], "full_key: seed"),
    ("wrong optimizer value", ["train.py", "optim.lr=fast"], "optim.lr='fast' is not a float"),
    ("key moved to the scheduler", ["train.py", "optim.warmup_ratio=0.2"], "now scheduler.warmup_ratio"),
    ("optimizer refuses a value", ["train.py", "optim.lr=-1"], "optim: Invalid learning rate: -1"),
    ("betas not a pair", ["train.py", "optim.betas=[0.9]"], "optim: betas takes 2 values"),
    ("warmup beyond the run", ["train.py", "scheduler.warmup_ratio=1.5"], "between 0 and 1; got 1.5"),
    (
        "scheduler without total_steps",
        [
            "train.py",
            "scheduler._target_=torch.optim.lr_scheduler.StepLR",
            "~scheduler.warmup_ratio",
            "+scheduler.step_size=1",
        ],
        "wrap a torch.optim.lr_scheduler class in a function that takes total_steps",
    ),
    (
        "DeepSpeed key Lightning owns",
        ["train.py", "strategy=deepspeed_zero2", "+strategy.config.gradient_clipping=1.0", *SMALL_RUN],
        "DeepSpeed config must not set 'gradient_clipping'",
    ),
    ("unknown model", ["train.py", "model=nope"], "Could not find 'model/nope'"),
    (
        "key the target does not take",
        ["train.py", "+model.foo=1", *SMALL_RUN],
        "model.foo: emoreason.models.backbones.EmbeddedBackbone takes no such argument",
    ),
    (
        "method value not one of its choices",
        ["train.py", "model=tiny_neox", "method=label_only", "method.inference=gnerate"],
        "method.inference='gnerate' is not one of generate, score",
    ),
    (
        "method refuses a value",
        ["train.py", "model=tiny_neox", "method=multitask", "data=kote_reasoning", "method.alpha=3"],
        "error: method.alpha must be in [0, 1], got 3",  # without Hydra's "Error in call to target"
    ),
    (
        "method value out of range",
        ["train.py", "model=tiny_neox", "method=label_only", "method.max_new_tokens=-5"],
        "method.max_new_tokens must be at least 1, got -5",
    ),
    (
        "classifier dropout out of range",
        ["train.py", "method.dropout=1.5"],
        "method.dropout must be in [0, 1)",
    ),
    (
        "data value out of range, before any file is read",
        ["train.py", "data.source.holdout_size=-5", "paths.kote_dir=/nonexistent"],
        "data.source.holdout_size must be at least 1, got -5",
    ),
    (
        "generative method on an encoder",
        ["train.py", "method=label_only", *SMALL_RUN],
        "method=label_only generates text and needs a decoder backbone",
    ),
    ("unparsable override", ["train.py", "seed=[1,"], "cannot parse override 'seed=[1,'"),
    ("evaluate: no checkpoint", ["evaluate.py"], "ckpt_path is required"),
    (
        "evaluate: threshold out of range, before the checkpoint is read",
        ["evaluate.py", "ckpt_path=/nonexistent.ckpt", "threshold=1.5"],
        "threshold must be in [0.0, 1.0], got 1.5",
    ),
    (
        "LoRA rank zero, named as such (PEFT's error blamed target_modules)",
        ["train.py", "model=tiny_neox", "lora=default", "lora.r=0"],
        "lora.r must be at least 1, got 0",
    ),
    (
        "LoRA dropout out of range",
        ["train.py", "model=tiny_neox", "lora=default", "lora.dropout=1.0"],
        "lora.dropout must be in [0.0, 1.0), got 1.0",
    ),
    (
        "Lightning argument outside its Literal choices, before any file is read",
        ["train.py", "trainer.precision=bf17", "paths.kote_dir=/nonexistent"],
        "trainer.precision='bf17' is not one of 64, 32, 16, transformer-engine, ",
    ),
    (
        "Lightning's own refusal of a value",
        ["train.py", "callbacks.early_stopping.mode=maxx"],
        "error: callbacks.early_stopping: `mode` can be min, max, got maxx",
    ),
    (
        "batch size zero",
        ["train.py", "data.loader.batch_size=0"],
        "data.loader.batch_size must be at least 1, got 0",
    ),
    ("generate: key not in the config", ["generate.py", "nn=1"], "Could not override 'nn'"),
    (
        "plan_memory: model given twice",
        ["plan_memory.py", "+model=tiny_electra"],
        "model appears more than once",
    ),
    ("report on a missing folder", ["report.py", "/nonexistent/sweep"], "is not a folder"),
]


@pytest.mark.parametrize(("what", "argv", "phrase"), USER_ERRORS, ids=[u[0] for u in USER_ERRORS])
def test_each_user_error_is_one_line_and_exit_2(what, argv, phrase, tmp_path):
    argv = [*argv, f"hydra.run.dir={tmp_path}"] if argv[0] != "report.py" else argv
    done = run_entry(*argv)
    assert done.returncode == 2, done.stderr
    lines = error_lines(done.stderr, argv[0])
    assert len(lines) == 1 and phrase in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_report_on_a_single_run_folder_says_it_is_not_a_sweep(single_run_dir):
    done = run_entry("report.py", str(single_run_dir.parents[2]))
    assert done.returncode == 2
    [line] = error_lines(done.stderr, "report.py")
    assert "is a single run (train.py without -m), not a sweep job" in line
    assert "Traceback" not in done.stderr


def test_hydra_full_error_brings_the_traceback_back(tmp_path):
    done = run_entry("train.py", "seed=abc", f"hydra.run.dir={tmp_path}", env={"HYDRA_FULL_ERROR": "1"})
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "emoreason.config.ConfigError" in done.stderr
