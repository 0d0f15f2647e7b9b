"""Reference floors against scikit-learn computed directly, their cache, and the KOTE protocol figures."""

import json

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier

from emoreason.data.kote import read_kote_tsv
from emoreason.data.sampling import KoteSplits
from emoreason.evaluation import floors as floors_module
from emoreason.evaluation.files import FLOORS_FILE
from emoreason.evaluation.floors import compute_floors, targets, write_floors
from emoreason.evaluation.scoring import ScoredSplit, split_report
from emoreason.training.metrics import THRESHOLD_GRID

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def splits(kote_dir) -> KoteSplits:
    """240 real training comments, 120 validation and 150 test comments."""
    val, test = read_kote_tsv(kote_dir / "val.tsv"), read_kote_tsv(kote_dir / "test.tsv")
    return KoteSplits(train=val[:240], val=val[240:360], test=test[:150], scheme="val_holdout")


def tuned_on_val(val_scores: np.ndarray, val_gold: np.ndarray) -> float:
    """The grid threshold with the best validation macro-F1, lowest on ties, by scikit-learn."""
    figures = [f1_score(val_gold, val_scores > t, average="macro", zero_division=0) for t in THRESHOLD_GRID]
    return THRESHOLD_GRID[int(np.argmax(figures))]


def assert_test_figures(report, val_scores, test_scores, val_gold, test_gold):
    threshold = tuned_on_val(val_scores, val_gold)
    assert report["threshold"] == threshold
    for average in ("macro", "micro"):
        expected = f1_score(test_gold, test_scores > threshold, average=average, zero_division=0)
        assert report["test"]["tuned"][f"{average}_f1"] == pytest.approx(expected, abs=1e-6)
        fixed = f1_score(test_gold, test_scores > 0.3, average=average, zero_division=0)
        assert report["test"]["at_0.3"][f"{average}_f1"] == pytest.approx(fixed, abs=1e-6)


def test_floors_equal_scikit_learn_computed_directly(splits):
    reports = compute_floors(splits)
    val_gold, test_gold = targets(splits.val), targets(splits.test)
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    model = OneVsRestClassifier(LogisticRegression(C=4.0, solver="liblinear"))
    model.fit(vectorizer.fit_transform([r.text for r in splits.train]), targets(splits.train))
    val_scores, test_scores = (
        model.predict_proba(vectorizer.transform([r.text for r in rows]))
        for rows in (splits.val, splits.test)
    )
    assert_test_figures(reports["tfidf_logreg"], val_scores, test_scores, val_gold, test_gold)

    every = reports["every_label"]["test"]["tuned"]
    assert every["macro_f1"] == pytest.approx(f1_score(test_gold, np.ones_like(test_gold), average="macro"))
    assert every["micro_f1"] == pytest.approx(f1_score(test_gold, np.ones_like(test_gold), average="micro"))

    prior = targets(splits.train).mean(0)
    val_prior, test_prior = (np.tile(prior, (len(g), 1)) for g in (val_gold, test_gold))
    assert_test_figures(reports["label_prior"], val_prior, test_prior, val_gold, test_gold)


def test_floors_are_cached_by_the_rows_and_written_into_the_run_folder(splits, tmp_path, monkeypatch):
    first = json.loads(
        write_floors(splits, tmp_path / "run1", tmp_path / "cache").read_text(encoding="utf-8")
    )
    assert (tmp_path / "run1" / FLOORS_FILE).exists()
    assert (tmp_path / "cache" / "floors" / f"{first['key']}.json").exists()
    assert first["sizes"] == {"train": 240, "val": 120, "test": 150}

    def not_again(*args, **kwargs):
        raise AssertionError("floors recomputed although cached")

    monkeypatch.setattr(floors_module, "compute_floors", not_again)
    again = json.loads(
        write_floors(splits, tmp_path / "run2", tmp_path / "cache").read_text(encoding="utf-8")
    )
    assert again == first
    fewer = KoteSplits(train=splits.train[:200], val=splits.val, test=splits.test, scheme="val_holdout")
    with pytest.raises(AssertionError, match="recomputed"):
        write_floors(fewer, tmp_path / "run3", tmp_path / "cache")  # other rows: another key


def test_split_report_has_the_kote_protocol_beside_the_tuned_figures():
    """Test figures at KOTE's fixed 0.3 threshold and macro-AUROC, both as scikit-learn computes them."""
    gen = torch.Generator().manual_seed(1)
    gold = (torch.rand(200, 44, generator=gen) < 0.2).int()
    gold[:, 5] = 0  # no positive: AUROC undefined for it, left out of the macro average
    scores = torch.rand(200, 44, generator=gen) * 0.7 + gold * 0.3
    report = split_report(ScoredSplit(scores, gold), threshold=0.42)
    y, s = gold.numpy(), scores.numpy()
    assert report.at_03.macro_f1 == pytest.approx(f1_score(y, s > 0.3, average="macro", zero_division=0))
    assert report.at_03.micro_f1 == pytest.approx(f1_score(y, s > 0.3, average="micro", zero_division=0))
    defined = [j for j in range(44) if 0 < y[:, j].sum() < len(y)]
    assert report.macro_auroc == pytest.approx(roc_auc_score(y[:, defined], s[:, defined], average="macro"))
