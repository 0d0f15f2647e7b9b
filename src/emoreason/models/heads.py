"""Classification heads: a backbone's hidden states → 44 emotion logits."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedModel


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from each row's first real token, as ``generate`` counts them.

    A decoder given a left-padded batch without these would place every row's text at shifted rotary
    positions, so padding would change its outputs.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token, whichever side the padding is on."""
    return attention_mask.shape[1] - 1 - attention_mask.flip(-1).argmax(-1)


Pooling = Literal["token", "mean"]
"""How a head reduces the hidden states to one vector per comment: ``token``, the encoder's [CLS] (first) or
the decoder's last real token, as the KOTE paper's KcELECTRA and most fine-tuning recipes do; ``mean``, the
average over the real tokens (sentence-transformers' mean pooling), which a small model trained from scratch
learns faster from: every token's state gets a gradient, not only one position's."""


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of ``hidden`` (batch, length, width) over each row's real tokens → (batch, width)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class EncoderClassifier(nn.Module):
    """Linear layer over an encoder's pooled states: the [CLS] (first) token as in the KOTE paper's KcELECTRA
    setup, or the mean over the real tokens (:data:`Pooling`)."""

    def __init__(
        self, encoder: PreTrainedModel, num_labels: int, dropout: float = 0.1, pooling: Pooling = "token"
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = hidden[:, 0] if self.pooling == "token" else mean_pool(hidden, attention_mask)
        return self.head(self.dropout(pooled))


class DecoderClassifier(nn.Module):
    """Linear layer over a decoder's last real token, the only position that has read the whole comment, or
    the mean over the real tokens (:data:`Pooling`).

    Takes a causal LM and keeps its base model only; the output embedding (30k × 4096 for Polyglot) is
    not needed to classify and is dropped.
    """

    def __init__(
        self, causal_lm: PreTrainedModel, num_labels: int, dropout: float = 0.1, pooling: Pooling = "token"
    ) -> None:
        super().__init__()
        self.decoder = causal_lm.base_model
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(causal_lm.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.decoder(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask)
        ).last_hidden_state
        if self.pooling == "token":
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            pooled = hidden[rows, last_token_index(attention_mask)]
        else:
            pooled = mean_pool(hidden, attention_mask)
        return self.head(self.dropout(pooled.to(self.head.weight.dtype)))
