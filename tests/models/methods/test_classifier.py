"""The classifier method's head starts at the training rows' label prior, so short runs leave it at once."""

from __future__ import annotations

import math

import pytest
import torch

from emoreason.components import build_parts
from emoreason.data.kote import KoteRow
from emoreason.labels import NUM_LABELS
from emoreason.models.heads import EncoderClassifier
from emoreason.models.methods.classifier import ClassifierMethod
from tests.support.project import SMALL_RUN

ROWS = [
    KoteRow(id=str(i), text=f"c{i}", labels=labels) for i, labels in enumerate([(0, 3), (0,), (0, 5), (3,)])
]


def test_prior_bias_init_sets_each_labels_smoothed_log_odds(tiny_encoder) -> None:
    model = EncoderClassifier(tiny_encoder, NUM_LABELS)
    ClassifierMethod(bias_init="prior").data_dependent_init(model, ROWS)
    for label in range(NUM_LABELS):
        count = sum(label in row.labels for row in ROWS)
        p = (count + 1) / (len(ROWS) + 2)  # 0 → 1/6 and 4 of 4 → 5/6: finite either way
        assert model.head.bias[label].item() == pytest.approx(math.log(p / (1 - p)), abs=1e-6)
    assert model.head.bias[0] > model.head.bias[3] > model.head.bias[5] > model.head.bias[1]


def test_uniform_bias_init_keeps_pytorchs_default(tiny_encoder) -> None:
    model = EncoderClassifier(tiny_encoder, NUM_LABELS)
    before = model.head.bias.detach().clone()
    ClassifierMethod(bias_init="uniform").data_dependent_init(model, ROWS)
    assert torch.equal(model.head.bias, before)


@pytest.mark.shared_data
def test_a_new_run_starts_at_its_own_training_rows_prior(compose_train) -> None:
    parts = build_parts(compose_train(*SMALL_RUN, "data.source.max_train_rows=64"))
    rows = parts.splits.train
    assert len(rows) == 64
    frequency = torch.tensor([sum(label in r.labels for r in rows) for label in range(NUM_LABELS)])
    expected = torch.logit((frequency + 1) / (len(rows) + 2))
    torch.testing.assert_close(parts.module.model.head.bias.detach(), expected.float())
