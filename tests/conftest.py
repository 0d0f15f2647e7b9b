"""Fixtures for the whole suite: the real KOTE copy and smaller copies of it, the reasoning sample,
a tiny trained checkpoint, composed configs; and the session's check for its data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from emoreason.config import register_resolvers
from emoreason.train import train
from tests.support.project import (
    CONF_DIR,
    REPO,
    compose_small_run,
    missing_data,
    shared_kote_dir,
    shared_reasoning_path,
)

register_resolvers()


def pytest_configure(config: pytest.Config) -> None:
    """Stop the session in its first second, once, when the data the suite reads is missing.

    Without this, each of the tests that read KOTE failed on its own, after the whole run.
    """
    problem = missing_data()
    if problem:
        pytest.exit(f"test data missing: {problem}", returncode=pytest.ExitCode.USAGE_ERROR)
    _share_the_cores_between_workers()


def _share_the_cores_between_workers() -> None:
    """Under pytest-xdist (``make test`` runs ``-n auto``), give each worker its share of the cores.

    torch starts as many intra-op threads as there are cores in every process, so two workers on two cores
    ran four spinning threads: the suite's longest test took three times as long as in one process.
    ``OMP_NUM_THREADS`` carries the share to the training runs the tests start as subprocesses.
    """
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers is None or "OMP_NUM_THREADS" in os.environ:  # a share the user chose is kept
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // int(workers))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def kote_dir() -> Path:
    return shared_kote_dir()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tokenizer/encoding cache per test session, as a user's runs would share one."""
    return tmp_path_factory.mktemp("cache")


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


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, small_kote_dir, cache_dir) -> Path:
    """The best checkpoint of the embedded tiny ELECTRA after one epoch on 64 real KOTE rows (val_holdout)."""
    out = tmp_path_factory.mktemp("tiny_run")
    cfg = compose_small_run(
        out, small_kote_dir, cache_dir, "trainer.max_epochs=1", "data.source.max_train_rows=64"
    )
    report = train(cfg)
    return Path(report["best_checkpoint"])


@pytest.fixture(scope="session")
def shared_reasoning_jsonl() -> Path:
    """KOTE_REASONING_PATH, else ../shared/data/kote_reasoning/reasoning.jsonl; fails loudly when absent."""
    default = REPO.parent / "shared" / "data" / "kote_reasoning" / "reasoning.jsonl"
    path = Path(os.environ.get("KOTE_REASONING_PATH", default))
    if not path.is_file():
        pytest.fail(f"reasoning sample not found at {path}: set KOTE_REASONING_PATH")
    return path


@pytest.fixture(scope="session")
def reasoning_path() -> Path:
    return shared_reasoning_path()


@pytest.fixture(scope="session")
def reasoning_kote_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All of val.tsv (the reasoning sample's rows) and test.tsv's first 60 rows: real, quick to score."""
    source = shared_kote_dir()
    target = tmp_path_factory.mktemp("kote_reasoning")
    (target / "val.tsv").write_text((source / "val.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    test = (source / "test.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:60]
    (target / "test.tsv").write_text("".join(test), encoding="utf-8")
    return target
