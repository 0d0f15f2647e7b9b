"""Real comments with their reasoning, and a BPE tokenizer trained on them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import ElectraConfig, ElectraModel

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


@pytest.fixture
def tiny_encoder() -> ElectraModel:
    """A one-layer, 16-wide ELECTRA encoder with fixed random weights (seed 0), in eval mode."""
    torch.manual_seed(0)
    config = ElectraConfig(
        vocab_size=50, embedding_size=16, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    return ElectraModel(config).eval()
