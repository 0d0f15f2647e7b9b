"""The paired bootstrap: known differences, identical arms, a loop-by-loop reference, reproducibility."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from emoreason.sweeps.stats import Resamples, label_buckets, paired_bootstrap


def synthetic(n: int, labels: int, seeds: int, accuracy_a: float, accuracy_b: float, rng_seed: int = 1):
    """Gold labels and two arms that keep each gold bit with the given accuracy (flipping it otherwise)."""
    rng = np.random.default_rng(rng_seed)
    gold = rng.random((n, labels)) < np.linspace(0.05, 0.5, labels)
    gold[:, 0] = rng.random(n) < 0.3

    def arm(accuracy: float) -> np.ndarray:
        flips = rng.random((seeds, n, labels)) > accuracy
        return gold[None] ^ flips

    return gold, arm(accuracy_a), arm(accuracy_b)


def macro(gold: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([f1_score(gold, p, average="macro", zero_division=0) for p in predicted]))


def test_a_known_difference_is_covered_by_the_interval_with_a_small_p_value():
    gold, a, b = synthetic(n=2000, labels=6, seeds=3, accuracy_a=0.80, accuracy_b=0.90)
    result = paired_bootstrap(gold, a, b, resamples=500, seed=0)
    true_gap = macro(gold, b) - macro(gold, a)
    assert true_gap > 0.05
    diff = result["macro_f1"]
    assert diff.diff == pytest.approx(true_gap)
    assert diff.low < true_gap < diff.high and diff.low > 0
    assert diff.p == pytest.approx(1 / 501)
    micro = result["micro_f1"]
    micro_gap = np.mean([f1_score(gold, p, average="micro") for p in b]) - np.mean(
        [f1_score(gold, p, average="micro") for p in a]
    )
    assert micro.diff == pytest.approx(micro_gap) and micro.low < micro_gap < micro.high and micro.p < 0.01


def test_intervals_cover_a_difference_set_in_advance_about_95_times_in_100():
    """Coverage, the property a 95% interval promises: the population gap (measured on 200,000 comments of
    the same process) and, for two arms of equal accuracy drawn apart, 0 lie inside in most of 40 samples."""
    gold, a, b = synthetic(n=200_000, labels=6, seeds=1, accuracy_a=0.80, accuracy_b=0.83, rng_seed=100)
    gap = macro(gold, b) - macro(gold, a)
    covered = {"gap": 0, "zero": 0}
    for sample in range(40):
        gold, a, b = synthetic(n=400, labels=6, seeds=1, accuracy_a=0.80, accuracy_b=0.83, rng_seed=sample)
        diff = paired_bootstrap(gold, a, b, resamples=300, seed=sample)["macro_f1"]
        covered["gap"] += diff.low <= gap <= diff.high
        gold, a, b = synthetic(n=400, labels=6, seeds=1, accuracy_a=0.80, accuracy_b=0.80, rng_seed=sample)
        diff = paired_bootstrap(gold, a, b, resamples=300, seed=sample)["macro_f1"]
        covered["zero"] += diff.low <= 0 <= diff.high
    assert gap > 0.02 and covered["gap"] >= 34 and covered["zero"] >= 34, (gap, covered)  # 85%: 3 sd below 95


def test_identical_arms_cover_zero_with_p_one():
    gold, a, _ = synthetic(n=300, labels=5, seeds=2, accuracy_a=0.8, accuracy_b=0.8)
    result = paired_bootstrap(gold, a, a.copy(), resamples=200, seed=3)
    for name in ("macro_f1", "micro_f1", "rare_macro_f1", "frequent_macro_f1"):
        diff = result[name]
        assert diff.diff == 0 and diff.low <= 0 <= diff.high and diff.p == 1.0
    assert all(d.diff == 0 and d.p == 1.0 for d in result["per_label_f1"])


def test_equals_a_straightforward_reference_on_a_small_case():
    """Replicate by replicate: resample the rows and seeds drawn, score each with scikit-learn, average."""
    gold, a, b = synthetic(n=40, labels=4, seeds=3, accuracy_a=0.7, accuracy_b=0.75, rng_seed=7)
    gold[:, 3] = False  # a label with no gold comment: F1 0 by zero_division, as in metrics.json
    resamples = 60
    result = paired_bootstrap(gold, a, b, resamples=resamples, seed=11)
    draws = Resamples.draw(40, 3, resamples, 11)
    buckets = label_buckets(gold)
    expected = {"macro": [], "micro": [], "label1": [], "rare": []}
    for rows, seeds in zip(draws.comments, draws.seeds, strict=True):

        def score(arm, rows=rows, seeds=seeds, **kw):
            return np.mean([f1_score(gold[rows], arm[s][rows], zero_division=0, **kw) for s in seeds], axis=0)

        expected["macro"].append(score(b, average="macro") - score(a, average="macro"))
        expected["micro"].append(score(b, average="micro") - score(a, average="micro"))
        per_label = score(b, average=None) - score(a, average=None)
        expected["label1"].append(per_label[1])
        expected["rare"].append(per_label[buckets["rare"]].mean())
    np.testing.assert_allclose(result["macro_f1"].replicates, expected["macro"], atol=1e-12)
    np.testing.assert_allclose(result["micro_f1"].replicates, expected["micro"], atol=1e-12)
    np.testing.assert_allclose(result["per_label_f1"][1].replicates, expected["label1"], atol=1e-12)
    np.testing.assert_allclose(result["rare_macro_f1"].replicates, expected["rare"], atol=1e-12)
    deltas = np.array(expected["macro"])
    observed = macro(gold, b) - macro(gold, a)
    low, high = np.quantile(deltas, [0.025, 0.975])
    p = (1 + np.sum(np.abs(deltas - observed) >= abs(observed))) / (resamples + 1)
    assert (result["macro_f1"].low, result["macro_f1"].high) == pytest.approx((low, high))
    assert result["macro_f1"].p == pytest.approx(p)


def test_the_bootstrap_seed_makes_it_reproducible():
    gold, a, b = synthetic(n=200, labels=5, seeds=2, accuracy_a=0.8, accuracy_b=0.82)
    first, again = (paired_bootstrap(gold, a, b, resamples=100, seed=5) for _ in range(2))
    other = paired_bootstrap(gold, a, b, resamples=100, seed=6)
    assert first["macro_f1"].to_json() == again["macro_f1"].to_json()
    assert first["macro_f1"].to_json() != other["macro_f1"].to_json()


def test_buckets_split_labels_by_gold_count_into_thirds():
    gold = np.zeros((10, 7), dtype=bool)
    for label, count in enumerate([5, 0, 9, 1, 3, 3, 7]):
        gold[:count, label] = True
    assert label_buckets(gold) == {"rare": [1, 3, 4], "middle": [0, 5], "frequent": [2, 6]}


def test_mismatched_shapes_are_an_error():
    gold, a, b = synthetic(n=20, labels=3, seeds=2, accuracy_a=0.8, accuracy_b=0.8)
    with pytest.raises(ValueError, match="paired bootstrap needs"):
        paired_bootstrap(gold, a, b[:1])
