"""``--help`` of every entry point: what it does, every config group it composes (one line each), its keys."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from tests.support.project import CONF_DIR, REPO

GROUP_LINE = re.compile(r"^  (\w+) {2,}\S", re.MULTILINE)
"""A described group: two spaces, the name, at least two spaces, its one-line description."""

TRAIN_ONLY_ELSEWHERE = {"generator", "prompt"}
"""conf/ groups that belong to generate.py, not train.py."""


def composed_groups(config_name: str) -> set[str]:
    """Every config group the entry point's defaults list chooses from (hydra's own groups as ``hydra``)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, return_hydra_config=True)
    return {group.split("/")[0] for group in cfg.hydra.runtime.choices}


def described_groups(help_text: str) -> set[str]:
    section = help_text.split("== Config groups", 1)[1].split("\n", 1)[1].split("\n==", 1)[0]
    return set(GROUP_LINE.findall(section))


@pytest.fixture(scope="module")
def help_texts() -> dict[str, str]:
    texts = {}
    for entry in ("train", "evaluate", "generate", "plan_memory"):
        done = subprocess.run(
            [sys.executable, f"{entry}.py", "--help"], cwd=REPO, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        texts[entry] = done.stdout
    return texts


def test_train_help_describes_every_config_group_in_conf(help_texts):
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()} - TRAIN_ONLY_ELSEWHERE
    assert described_groups(help_texts["train"]) == groups


@pytest.mark.parametrize("entry", ["evaluate", "generate", "plan_memory"])
def test_help_describes_every_group_the_entry_point_composes(help_texts, entry):
    assert composed_groups(entry) <= described_groups(help_texts[entry])


def test_help_names_what_the_command_does_and_the_keys_with_their_defaults(help_texts):
    train = help_texts["train"]
    assert train.startswith("train.py: fine-tune an emotion classifier on KOTE")
    assert re.search(r"^  optim\.lr +peak learning rate \[0\.0005\]$", train, re.MULTILINE)
    assert re.search(r"^  trainer\.max_epochs +.* \[10\]$", train, re.MULTILINE)
    assert "== Most used keys" in help_texts["generate"] and "[10000]" in help_texts["generate"]
    assert re.search(r"^  ckpt_path +checkpoint to load", help_texts["evaluate"], re.MULTILINE)
    assert re.search(r"^  gpu_memory_gib +.*\[None\]$", help_texts["plan_memory"], re.MULTILINE)


def test_help_shows_defaults_as_overridden():
    done = subprocess.run(
        [sys.executable, "train.py", "optim.lr=3e-5", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert re.search(r"^  optim\.lr +peak learning rate \[3e-05\]$", done.stdout, re.MULTILINE)


def test_report_help_names_its_argument():
    done = subprocess.run([sys.executable, "report.py", "--help"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0 and "sweep_dir" in done.stdout and "--out" in done.stdout
