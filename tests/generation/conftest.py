"""Fixtures for the generation tests: a fake OpenAI server on 127.0.0.1, a tiny KOTE copy, configs."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tests.support.fake_openai import FakeOpenAI, ServerThread
from tests.support.generation import API_KEY, DUPLICATE_IDS, TINY_ROWS, base_overrides, tiny_rows
from tests.support.project import CONF_DIR


@pytest.fixture(scope="session")
def tiny_kote_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """val.tsv (80 rows, two of them duplicates) and test.tsv (10 rows) in KOTE's format."""
    root = tmp_path_factory.mktemp("kote")
    val = tiny_rows("t", TINY_ROWS, seed=1)
    first_dup = val[-2].split("\t", 1)[1]
    val[-1] = f"{DUPLICATE_IDS[1]}\t{first_dup}"
    (root / "val.tsv").write_text("".join(val), encoding="utf-8")
    (root / "test.tsv").write_text("".join(tiny_rows("x", 10, seed=2)), encoding="utf-8")
    return root


@pytest.fixture
def fake_server() -> Iterator[ServerThread]:
    server = ServerThread(FakeOpenAI(api_key=API_KEY)).start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server: ServerThread) -> FakeOpenAI:
    return fake_server.fake


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    return API_KEY


@pytest.fixture
def make_cfg(tmp_path: Path, tiny_kote_dir: Path, fake_server: ServerThread) -> Callable[..., DictConfig]:
    """Compose conf/generate.yaml for the tiny KOTE copy and the fake server; extra overrides win."""

    def _make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            base = base_overrides(tmp_path, tiny_kote_dir, fake_server.base_url)
            return compose(config_name="generate", overrides=[*base, *overrides])

    return _make


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every outgoing connection fail, so 'no network call' is proven rather than assumed."""

    def refuse(self: socket.socket, address: object) -> None:
        raise AssertionError(f"network call attempted to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
