"""Values quoted for Hydra reach the config exactly as typed, through Hydra's real override parser."""

from __future__ import annotations

import importlib.util
import os
import random

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf

from emoreason.cli_args import hydra_quoted, is_hydra_quoted, quote_free_text
from tests.support.project import CONF_DIR, REPO

COMMENTS = [
    "아 진짜 어이가 없네",  # the README's example: the shell has removed its quotes
    "진짜, 이게 = 말이 되냐 :) # 100% & 왜? 'ㅋㅋ'",
    'He said "no" , ok',
    "${oc.env:HOME} 그리고 ${foo}",  # OmegaConf would interpolate it
    "백슬래시 \\${x} \\\\${y} 끝\\",  # backslashes before ${ and before the closing quote
    "it\\'s \\\\' '",
    "[1, 2] {a: b} (c) ~d +e @f",
    "null",
    "3.5",
    " 앞뒤 공백 ",
    "줄\n바꿈\t탭",
]
SWEEP_JOB_CKPT = (
    "multirun/2026-11-28/15-02-11/data=kote_plain,model=tiny_electra,seed=0/checkpoints/last.ckpt"
)


def composed(*overrides: str, config_name: str = "evaluate"):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def random_comments(n: int) -> list[str]:
    """Seeded strings of the characters and pairs that Hydra's or OmegaConf's grammar treats specially."""
    alphabet = [*"ab 한글'\"\\${}:,=()[]#%&?@|~+-", "${", "\\'"]
    rnd = random.Random(0)
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 14))) for _ in range(n)]


@pytest.mark.parametrize("comment", COMMENTS)
def test_a_comment_reaches_the_config_as_typed(comment):
    (arg,) = quote_free_text([f"text={comment}"], literal=["text"])
    assert composed(arg).text == comment


def test_any_mix_of_grammar_characters_reaches_the_config_as_typed():
    for comment in random_comments(60):
        assert composed(f"text={hydra_quoted(comment, literal=True)}").text == comment, comment


def test_unquoted_the_readme_example_and_a_sweep_job_path_do_not_parse():
    """Why the quoting exists: Hydra's grammar rejects both as the shell passes them."""
    for arg in ("text=아 진짜 어이가 없네", f"ckpt_path={SWEEP_JOB_CKPT}"):
        with pytest.raises(OverrideParseException):
            composed(arg)


def test_a_sweep_job_checkpoint_path_is_passed_back_unchanged():
    args = quote_free_text([f"ckpt_path={SWEEP_JOB_CKPT}", "threshold=0.3"], paths=["ckpt_path"])
    cfg = composed(*args)
    assert cfg.ckpt_path == SWEEP_JOB_CKPT and cfg.threshold == 0.3


def test_a_path_keeps_its_interpolations_while_text_does_not():
    args = quote_free_text(
        ["paths.kote_dir=${oc.env:HOME}/코테 데이터", "text=${oc.env:HOME}"],
        literal=["text"],
        paths=["paths.kote_dir"],
    )
    cfg = composed(*args)
    assert cfg.paths.kote_dir == f"{os.environ['HOME']}/코테 데이터"
    assert cfg.text == "${oc.env:HOME}"


def test_a_value_already_in_hydra_quotes_and_other_arguments_pass_untouched():
    argv = ["-m", "text='아 진짜'", "top_k=3", "hydra.run.dir=out", "model=tiny_electra", "ckpt_path"]
    assert quote_free_text(argv, literal=["text"], paths=["ckpt_path"]) == argv
    assert composed("text='아 진짜'").text == "아 진짜"


def test_an_empty_value_becomes_an_empty_string():
    (arg,) = quote_free_text(["text="], literal=["text"])
    assert composed(arg).text == ""


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("'a b'", True),
        ('"a b"', True),
        ("'it\\'s'", True),
        ("'a' 'b'", False),
        ("'a'한", False),
        ("a", False),
    ],
)
def test_is_hydra_quoted_follows_hydras_lexer(value, quoted):
    assert is_hydra_quoted(value) is quoted


def test_trains_quoted_keys_never_name_a_sweep_job_folder():
    """Quoting a key in a job folder's name would rename the folder, and a rerun would redo finished jobs."""
    spec = importlib.util.spec_from_file_location("train_entry", REPO / "train.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    hydra_conf = OmegaConf.load(CONF_DIR / "hydra" / "default.yaml")
    assert set(entry.PATH_KEYS) <= set(hydra_conf.job.config.override_dirname.exclude_keys)
    args = quote_free_text([f"ckpt_path={SWEEP_JOB_CKPT}"], paths=entry.PATH_KEYS)
    assert composed(*args, "data.source.download=false", config_name="train").ckpt_path == SWEEP_JOB_CKPT
