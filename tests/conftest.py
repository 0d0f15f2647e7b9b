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
    """KOTE_DIR, else ../shared/data/kote (checked once at session start, :func:`pytest_configure`)."""
    return Path(os.environ.get("KOTE_DIR", SHARED / "kote"))


def shared_reasoning_path() -> Path:
    """KOTE_REASONING_PATH, else kote_reasoning/reasoning.jsonl beside the KOTE folder (as conf/paths)."""
    default = shared_kote_dir() / ".." / "kote_reasoning" / "reasoning.jsonl"
    return Path(os.environ.get("KOTE_REASONING_PATH", default))


def missing_data() -> str | None:
    """What test data is missing, and which variable to set; None when both are there."""
    kote, reasoning = shared_kote_dir(), shared_reasoning_path()
    if not all((kote / f"{split}.tsv").is_file() for split in ("val", "test")):
        return f"KOTE data not found at {kote}: set KOTE_DIR to a folder with KOTE's val.tsv and test.tsv"
    if not reasoning.is_file():
        return (
            f"reasoning sample not found at {reasoning}: set KOTE_REASONING_PATH (default: "
            "kote_reasoning/reasoning.jsonl beside KOTE_DIR)"
        )
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Stop the session in its first second, once, when the data the suite reads is missing.

    Without this, each of the tests that read KOTE failed on its own, after the whole run.
    """
    problem = missing_data()
    if problem:
        pytest.exit(f"test data missing: {problem}", returncode=pytest.ExitCode.USAGE_ERROR)


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
