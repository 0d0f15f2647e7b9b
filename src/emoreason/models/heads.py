"""Classification heads: a backbone's hidden states → 44 emotion logits."""

from __future__ import annotations

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


class EncoderClassifier(nn.Module):
    """Linear layer over the [CLS] (first) token of an encoder, as in the KOTE paper's KcELECTRA setup."""

    def __init__(self, encoder: PreTrainedModel, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(self.dropout(hidden[:, 0]))


class DecoderClassifier(nn.Module):
    """Linear layer over a decoder's last real token: the only position that has read the whole comment.

    Takes a causal LM and keeps its base model only; the output embedding (30k × 4096 for Polyglot) is
    not needed to classify and is dropped.
    """

    def __init__(self, causal_lm: PreTrainedModel, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.decoder = causal_lm.base_model
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(causal_lm.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.decoder(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask)
        ).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        pooled = hidden[rows, last_token_index(attention_mask)]
        return self.head(self.dropout(pooled.to(self.head.weight.dtype)))
