"""Every sweep preset composes, and so does every job of its grid (what Hydra checks before launching)."""

import itertools

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from emoreason.config import TrainConfig, validate
from tests.support.project import CONF_DIR

PRESETS = sorted(p.stem for p in (CONF_DIR / "sweep").glob("*.yaml"))
GRIDS = {"ablation": 27, "tiny_ablation": 10, "study": 27}


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


def grid(params) -> list[list[str]]:
    """The jobs of a basic-sweeper ``params`` block, as override lists."""
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    axes = [[f"{o.key_or_group}={value}" for value in o.sweep_string_iterator()] for o in parsed]
    return [list(job) for job in itertools.product(*axes)]


def test_every_preset_is_checked_here():
    assert set(PRESETS) == {*GRIDS, "optuna_lr_rank"}


@pytest.mark.parametrize("preset", sorted(GRIDS))
def test_every_job_of_a_grid_composes_and_validates(preset):
    jobs = grid(compose_train(f"+sweep={preset}").hydra.sweeper.params)
    assert len(jobs) == GRIDS[preset]
    for job in jobs:
        cfg = compose_train(f"+sweep={preset}", *job)
        validate(cfg, TrainConfig)
        chosen = dict(override.split("=", 1) for override in job)
        assert cfg.hydra.runtime.choices.experiment == chosen["experiment"]


def test_tiny_ablation_is_fig3_with_tiny_models_on_the_val_holdout_split():
    cfg = compose_train("+sweep=tiny_ablation", "experiment=tiny_polyglot_reasoning")
    choices = cfg.hydra.runtime.choices
    assert (choices.model, choices.method, choices.data) == (
        "tiny_neox",
        "explain_then_predict",
        "kote_reasoning",
    )
    assert cfg.data.source.split_scheme == "val_holdout" and cfg.data.source.max_train_rows == 800


def test_optuna_preset_searches_lr_and_lora_rank_on_an_experiment_with_lora():
    cfg = compose_train("+sweep=optuna_lr_rank", "experiment=polyglot_reasoning")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.direction == "maximize" and sweeper.sampler.seed == 0 and sweeper.max_failure_rate == 1.0
    assert dict(sweeper.params) == {
        "optim.lr": "tag(log, interval(1e-5, 1e-3))",
        "lora.r": "choice(4, 8, 16, 32)",
    }
    trial = compose_train(
        "+sweep=optuna_lr_rank", "experiment=polyglot_reasoning", "optim.lr=3e-4", "lora.r=8"
    )
    assert validate(trial, TrainConfig).lora.r == 8 and trial.optim.lr == 3e-4


def test_study_is_the_full_size_question_with_its_controls_and_resumes_in_one_folder():
    cfg = compose_train("+sweep=study")
    jobs = grid(cfg.hydra.sweeper.params)
    arms = {job[1].split("=")[1] for job in jobs}
    assert {job[0] for job in jobs} == {"seed=0", "seed=1", "seed=2"} and len(arms) == 9
    assert cfg.hydra.sweep.dir == "multirun/study" and cfg.data.source.split_scheme == "val_holdout"
    assert cfg.data.source.max_train_rows is None  # all 4,000 training rows
    described = {}
    for arm in arms:
        job = compose_train("+sweep=study", f"experiment={arm}")
        choices = job.hydra.runtime.choices
        control = job.data.source.get("reasoning_control")
        described[arm] = (choices.model, choices.method, control)
    assert sorted(described.values(), key=str) == sorted(
        [
            ("tiny_electra", "classifier", None),
            ("tiny_neox", "label_only", None),
            ("tiny_neox", "explain_then_predict", "none"),
            ("tiny_neox", "predict_then_explain", "none"),
            ("tiny_neox", "multitask", "none"),
            ("tiny_neox", "explain_then_predict", "shuffled"),
            ("tiny_neox", "explain_then_predict", "template"),
            ("tiny_neox", "multitask", "shuffled"),
            ("tiny_neox", "multitask", "template"),
        ],
        key=str,
    )


def test_the_study_runs_every_arm_of_a_seed_before_the_next_seed():
    jobs = [
        dict(o.split("=", 1) for o in job) for job in grid(compose_train("+sweep=study").hydra.sweeper.params)
    ]
    arms = {job["experiment"] for job in jobs}
    assert [job["seed"] for job in jobs] == [seed for seed in ("0", "1", "2") for _ in arms]
    assert (
        jobs[-1]["experiment"] == "tiny_kcelectra_plain"
    )  # the embedded default last: its recipe may change
