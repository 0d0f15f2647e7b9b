"""Real comments with their reasoning, and a BPE tokenizer trained on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoreason.data.kote import KoteRow
from emoreason.models.tokenizers import train_tokenizer
from tests.support.reasoning import reasoning_rows


@pytest.fixture(scope="session")
def rows(reasoning_path: Path) -> list[KoteRow]:
    """200 real comments with their gold labels and reasoning."""
    return reasoning_rows(str(reasoning_path), 200)


@pytest.fixture(scope="session")
def tokenizer(rows: list[KoteRow], cache_dir: Path):
    """Byte-level BPE (1,000 tokens, <|endoftext|> as pad and eos, like Polyglot) on comments + reasoning."""
    return train_tokenizer([t for r in rows for t in (r.text, r.reasoning or "")], "bpe", 1000, cache_dir)
