"""A short real training on KOTE must learn something: beat the label-frequency prior on held-out test."""

import pytest
import torch
from hydra.utils import instantiate

from emoreason.labels import multi_hot
from emoreason.train import train
from emoreason.training.metrics import score_metrics, tune_threshold

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def prior_baseline(splits) -> dict[str, object]:
    """Every comment scored with each label's training frequency; threshold tuned on val like the model's."""
    prior = torch.stack([multi_hot(r.labels) for r in splits.train]).mean(0)

    def scores_and_targets(rows):
        return prior.expand(len(rows), -1), torch.stack([multi_hot(r.labels) for r in rows])

    threshold = tune_threshold(*scores_and_targets(splits.val))
    return score_metrics(*scores_and_targets(splits.test), threshold)


def test_short_training_beats_the_label_frequency_prior(compose_train):
    cfg = compose_train(
        "data.source.split_scheme=val_holdout",
        "logger=csv",
        "~callbacks.progress_bar",
        "trainer.max_epochs=3",
    )
    report = train(cfg)
    baseline = prior_baseline(instantiate(cfg.data.source).load())
    model = report["test"]["tuned"]
    assert report["data_sizes"]["test"] == 5000
    assert model["macro_f1"] > baseline["macro_f1"] + 0.01, (model["macro_f1"], baseline["macro_f1"])
    assert model["micro_f1"] > baseline["micro_f1"] + 0.01, (model["micro_f1"], baseline["micro_f1"])
