"""Classification heads: a backbone's hidden states → 44 emotion logits."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel


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
