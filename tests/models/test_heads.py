"""Classification heads: pooling picks the right states and padding never changes a comment's logits."""

from __future__ import annotations

import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from emoreason.models.heads import DecoderClassifier, EncoderClassifier, mean_pool

LABELS = 44


def test_mean_pool_averages_the_real_tokens_only() -> None:
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])
    pooled = mean_pool(hidden, mask)
    assert torch.equal(pooled[0], hidden[0, :3].mean(0)) and torch.equal(pooled[1], hidden[1, 1:].mean(0))
    hidden[0, 3] = hidden[1, 0] = 1e6  # what padding positions hold does not matter
    assert torch.equal(mean_pool(hidden, mask), pooled)


def _decoder() -> GPTNeoXForCausalLM:
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    return GPTNeoXForCausalLM(config).eval()


@pytest.mark.parametrize("pooling", ["token", "mean"])
def test_an_encoder_head_gives_a_comment_the_same_logits_however_much_padding_follows_it(
    pooling, tiny_encoder
) -> None:
    head = EncoderClassifier(tiny_encoder, LABELS, dropout=0.0, pooling=pooling).eval()
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    with torch.no_grad():
        alone = head(ids, torch.ones_like(ids))
        batched = head(padded, (padded != 0).long())
        hidden = head.encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=1e-5)
    expected = hidden[:, 0] if pooling == "token" else hidden.mean(1)
    torch.testing.assert_close(alone, head.head(expected))


@pytest.mark.parametrize("pooling", ["token", "mean"])
def test_a_decoder_head_gives_a_comment_the_same_logits_with_left_padding(pooling) -> None:
    head = DecoderClassifier(_decoder(), LABELS, dropout=0.0, pooling=pooling).eval()
    ids = torch.tensor([[5, 7, 9, 11]])
    padded = torch.cat([torch.zeros(1, 2, dtype=torch.long), ids], dim=1)
    with torch.no_grad():
        alone = head(ids, torch.ones_like(ids))
        batched = head(padded, (padded != 0).long())
        hidden = head.decoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=1e-5)
    expected = hidden[:, -1] if pooling == "token" else hidden.mean(1)
    torch.testing.assert_close(alone, head.head(expected))
