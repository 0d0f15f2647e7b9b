"""Fixtures for the reasoning tests: real KOTE rows with reasoning (../shared) and a tokenizer for them."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared_kote_dir, shared_reasoning_path

from emoreason.data.kote import KoteRow
from emoreason.models.tokenizers import train_tokenizer

from .support import reasoning_rows


@pytest.fixture(scope="session")
def reasoning_path() -> Path:
    return shared_reasoning_path()


@pytest.fixture(scope="session")
def rows(reasoning_path: Path) -> list[KoteRow]:
    """200 real comments with their gold labels and reasoning."""
    return reasoning_rows(str(reasoning_path), 200)


@pytest.fixture(scope="session")
def tokenizer(rows: list[KoteRow], cache_dir: Path):
    """Byte-level BPE (1,000 tokens, <|endoftext|> as pad and eos, like Polyglot) on comments + reasoning."""
    return train_tokenizer([t for r in rows for t in (r.text, r.reasoning or "")], "bpe", 1000, cache_dir)


@pytest.fixture(scope="session")
def reasoning_kote_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All of val.tsv (the reasoning sample's rows) and test.tsv's first 60 rows: real, quick to score."""
    source = shared_kote_dir()
    target = tmp_path_factory.mktemp("kote_reasoning")
    (target / "val.tsv").write_text((source / "val.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    test = (source / "test.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:60]
    (target / "test.tsv").write_text("".join(test), encoding="utf-8")
    return target
