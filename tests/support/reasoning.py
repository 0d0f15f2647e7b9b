"""Helpers shared by the reasoning tests: real rows with reasoning, a tiny GPT-NeoX, loader-like batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from emoreason.data.batching import pad_collate
from emoreason.data.kote import KoteRow
from emoreason.data.reasoning import read_reasoning_jsonl
from emoreason.models.backbones import EmbeddedBackbone

TINY_NEOX = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "rotary_pct": 0.25,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}
"""Smaller than conf/model/tiny_neox.yaml (same class): these tests only need it to learn a few rows."""

TINY_NEOX_OVERRIDES = (
    "model=tiny_neox",
    "model.vocab_size=1000",
    *(f"model.config.{key}={value}" for key, value in TINY_NEOX.items()),
)


def reasoning_rows(path: str, count: int) -> list[KoteRow]:
    """The first ``count`` records of a reasoning dataset as KOTE rows with their reasoning."""
    return [KoteRow(r.id, r.text, r.label_ids, r.reasoning) for r in read_reasoning_jsonl(path)[:count]]


def tiny_backbone(init_seed: int = 0) -> EmbeddedBackbone:
    return EmbeddedBackbone(
        "gpt_neox", config=dict(TINY_NEOX), architecture="decoder", tokenizer_kind="bpe", init_seed=init_seed
    )


def collate(method: Any, tokenizer: Any, columns: dict[str, list[Any]], rows: Sequence[int] | None = None):
    """A batch of encoded ``columns`` padded exactly as the data module pads it."""
    indices = range(len(columns["input_ids"])) if rows is None else rows
    features = [{"index": i, **{key: values[i] for key, values in columns.items()}} for i in indices]
    return pad_collate(features, method.pad_values(tokenizer), method.padding_side)


def train_steps(
    method: Any, model: torch.nn.Module, batch: dict, steps: int, lr: float = 1e-2
) -> list[float]:
    """``steps`` AdamW steps on one batch; the loss before each step."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss, _ = method.loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
