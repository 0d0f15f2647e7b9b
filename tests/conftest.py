"""Shared fixtures: where the real KOTE copy lives, small fixture files, and composing configs."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from emoreason.config import register_resolvers

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
SHARED = REPO.parent / "shared" / "data"

register_resolvers()


def shared_kote_dir() -> Path:
    """KOTE_DIR, else ../shared/data/kote. Tests that need it fail loudly when it is missing."""
    path = Path(os.environ.get("KOTE_DIR", SHARED / "kote"))
    if not (path / "val.tsv").exists():
        pytest.fail(f"KOTE data not found at {path}: set KOTE_DIR to a folder with val.tsv and test.tsv")
    return path


def shared_reasoning_path() -> Path:
    path = Path(os.environ.get("KOTE_REASONING_PATH", SHARED / "kote_reasoning" / "reasoning.jsonl"))
    if not path.exists():
        pytest.fail(f"reasoning sample not found at {path}: set KOTE_REASONING_PATH")
    return path


@pytest.fixture(scope="session")
def kote_dir() -> Path:
    return shared_kote_dir()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tokenizer/encoding cache per test session, as a user's runs would share one."""
    return tmp_path_factory.mktemp("cache")


def write_kote_tsv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """Rows as KOTE stores them: tab-separated CSV, a text holding ``"`` quoted with inner quotes doubled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter="\t", lineterminator="\n").writerows(rows)
    return path


@pytest.fixture
def compose_train(cache_dir: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with test-friendly paths; extra overrides win."""

    def _compose(*overrides: str, config_name: str = "train") -> DictConfig:
        base = [
            f"paths.output_dir={tmp_path / 'run'}",
            f"paths.cache_dir={cache_dir}",
            f"paths.kote_dir={shared_kote_dir()}",
        ]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name=config_name, overrides=[*base, *overrides])

    return _compose


@pytest.fixture(scope="session")
def small_kote_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real KOTE rows, fewer of them: val.tsv's first 1,200 and test.tsv's first 600 (a temp copy).

    Checksums no longer match the pinned ones, so runs over it set ``verify_checksums=false``.
    """
    source = shared_kote_dir()
    target = tmp_path_factory.mktemp("kote_small")
    for split, n in (("val", 1200), ("test", 600)):
        lines = (source / f"{split}.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:n]
        (target / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
    return target


SMALL_RUN = (
    "data.source.split_scheme=val_holdout",
    "data.source.holdout_size=200",
    "data.source.verify_checksums=false",
    "data.source.download=false",
    "logger=csv",
    "~callbacks.progress_bar",
)
