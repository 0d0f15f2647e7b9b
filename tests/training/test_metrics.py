import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from emoreason.labels import LABELS
from emoreason.training.metrics import THRESHOLD_GRID, macro_f1_by_threshold, score_metrics, tune_threshold


@pytest.fixture
def random_predictions():
    gen = torch.Generator().manual_seed(0)
    targets = (torch.rand(300, 44, generator=gen) < 0.15).int()
    targets[:, 7] = 0  # a label absent from the gold set: zero_division must agree with sklearn's
    scores = torch.rand(300, 44, generator=gen) * 0.6 + targets * 0.35
    return scores, targets


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.72])
def test_f1_figures_equal_sklearn(random_predictions, threshold):
    scores, targets = random_predictions
    ours = score_metrics(scores, targets, threshold)
    y_true, y_pred = targets.numpy(), (scores > threshold).int().numpy()
    for average in ("macro", "micro", "weighted"):
        expected = f1_score(y_true, y_pred, average=average, zero_division=0)
        assert ours[f"{average}_f1"] == pytest.approx(expected, abs=1e-6)
    per_label = f1_score(y_true, y_pred, average=None, zero_division=0)
    assert np.allclose([ours["per_label_f1"][name] for name in LABELS], per_label, atol=1e-6)


def test_vectorised_threshold_sweep_equals_sklearn(random_predictions):
    scores, targets = random_predictions
    swept = macro_f1_by_threshold(scores, targets)
    for index in (0, 20, 49, 98):
        t = THRESHOLD_GRID[index]
        expected = f1_score(targets.numpy(), (scores > t).int().numpy(), average="macro", zero_division=0)
        assert float(swept[index]) == pytest.approx(expected, abs=1e-6)


def test_tuned_threshold_is_the_best_on_the_grid(random_predictions):
    scores, targets = random_predictions
    best = tune_threshold(scores, targets)
    best_f1 = score_metrics(scores, targets, best)["macro_f1"]
    assert all(
        score_metrics(scores, targets, t)["macro_f1"] <= best_f1 + 1e-9 for t in (0.1, 0.3, 0.5, 0.7, 0.9)
    )
    assert best != 0.5  # the planted separation sits above 0.35, so 0.5 is not optimal


def test_best_macro_f1_metric_equals_the_tuned_threshold_figure(random_predictions):
    from emoreason.training.metrics import BestMacroF1

    scores, targets = random_predictions
    metric = BestMacroF1()
    for start in range(0, 300, 64):  # accumulated over batches, as during validation
        metric.update(scores[start : start + 64], targets[start : start + 64])
    best = score_metrics(scores, targets, tune_threshold(scores, targets))["macro_f1"]
    assert float(metric.compute()) == pytest.approx(best, abs=1e-6)
