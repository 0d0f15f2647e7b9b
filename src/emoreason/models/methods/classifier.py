"""The classifier method: a linear head over the backbone, BCE-with-logits over the 44 labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from emoreason.config import ConfigError
from emoreason.data.kote import KoteRow
from emoreason.labels import NUM_LABELS, multi_hot
from emoreason.models.backbones import NetworkSource
from emoreason.models.heads import DecoderClassifier, EncoderClassifier, Pooling
from emoreason.models.methods.base import Batch, Columns, Method, MethodScores


@dataclass
class ClassifierMethod(Method):
    """Multi-label classification with a linear head and BCE-with-logits over the 44 labels.

    ``pooling`` (:data:`~emoreason.models.heads.Pooling`): ``token`` pools an encoder at its first token and a
    decoder at its last real one; ``mean`` averages the real tokens. The input is the comment alone,
    in training and at inference, with or without a reasoning dataset: with ``data=kote_reasoning`` this is
    the no-reasoning baseline on exactly the rows the reasoning methods train on (a rationale as auxiliary
    training signal is what ``method=multitask`` does).
    """

    dropout: float = 0.1
    pooling: Pooling = "token"
    """``token`` is also what checkpoints stored before the option existed were trained with."""
    bias_init: Literal["prior", "uniform"] = "uniform"
    """``prior``: the head's bias starts at each label's log-odds in the training rows, so the first steps
    need not learn the label frequencies before the features (the "prior" initialization of Lin et al.
    2017, Focal Loss, section 4.1). A random-init encoder otherwise sits at the prior for about an epoch,
    which a 3-epoch schedule with mean pooling never left (docs/results.md); ``conf/method/classifier.yaml``
    chooses it. ``uniform``: PyTorch's ``nn.Linear`` default, what runs before the option had."""

    name = "classifier"

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"method.dropout must be in [0, 1), got {self.dropout}")

    def build_model(self, backbone: NetworkSource, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        head = EncoderClassifier if backbone.architecture == "encoder" else DecoderClassifier
        return head(backbone.load_network(tokenizer), NUM_LABELS, self.dropout, self.pooling)

    def data_dependent_init(self, model: nn.Module, train_rows: Sequence[KoteRow]) -> None:
        """With ``bias_init=prior``, the head's bias ← log(p / (1 − p)), p a label's smoothed frequency
        (count + 1) / (rows + 2) in ``train_rows``: finite for a label no training row has."""
        if self.bias_init != "prior":
            return
        if not isinstance(model, EncoderClassifier | DecoderClassifier):
            raise TypeError(f"bias_init=prior needs a classifier head, got {type(model).__name__}")
        counts = torch.stack([multi_hot(r.labels) for r in train_rows]).sum(0)
        prior = (counts + 1) / (len(train_rows) + 2)
        with torch.no_grad():
            model.head.bias.copy_(torch.logit(prior))

    def pad_values(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
        return {"input_ids": tokenizer.pad_token_id, "attention_mask": 0}

    def encode(
        self, rows: Sequence[KoteRow], tokenizer: PreTrainedTokenizerBase, max_length: int, *, train: bool
    ) -> Columns:
        """Columns for ``rows``; one fast batched tokenizer call, done once per split and cached."""
        del train  # same inputs for training and evaluation
        encoded = tokenizer([r.text for r in rows], truncation=True, max_length=max_length)
        return {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "targets": [multi_hot(r.labels) for r in rows],
        }

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = model(batch["input_ids"], batch["attention_mask"])
        return F.binary_cross_entropy_with_logits(logits.float(), batch["targets"]), {}

    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Per-label probabilities in [0, 1], shape (batch, 44)."""
        return torch.sigmoid(model(batch["input_ids"], batch["attention_mask"]).float())

    def loss_and_scores(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, MethodScores]:
        """:meth:`loss` and :meth:`scores` from one forward: validation needs both of the same logits."""
        logits = model(batch["input_ids"], batch["attention_mask"]).float()
        return F.binary_cross_entropy_with_logits(logits, batch["targets"]), MethodScores(
            torch.sigmoid(logits)
        )
