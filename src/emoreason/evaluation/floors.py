"""Reference floors on a run's own split: what a model must beat before any of its numbers mean anything.

- ``every_label``: every comment gets every label (score 1 for all): the F1 of not deciding at all.
- ``label_prior``: every comment gets each label's training frequency as its score, so the tuned threshold
  predicts the labels frequent enough for every comment, the best constant answer.
- ``tfidf_logreg``: TF-IDF over character 1–3-grams (sublinear tf) + one-vs-rest logistic regression
  (scikit-learn, liblinear, ``C=4``): a two-minute baseline that KOTE's Korean comments make strong.

Each floor's scores go through :func:`emoreason.evaluation.scoring.threshold_and_reports`, the very code that
scores a model: threshold tuned on the run's validation rows, then applied once to its test rows, with the
0.5 / KOTE 0.3 figures and macro-AUROC beside it. Floors depend only on the rows, so they are computed once
per split and seed and cached under ``<cache_dir>/floors/<hash of the rows and settings>.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emoreason.data.kote import KoteRow
from emoreason.data.sampling import KoteSplits
from emoreason.evaluation.files import FLOORS_FILE
from emoreason.evaluation.records import RunMetrics
from emoreason.evaluation.scoring import ScoredSplit, threshold_and_reports
from emoreason.io import write_json_atomic
from emoreason.labels import NUM_LABELS

log = logging.getLogger(__name__)

FLOOR_NAMES = ("every_label", "label_prior", "tfidf_logreg")


@dataclass(frozen=True)
class TfidfSettings:
    """The TF-IDF floor's settings (part of the cache key). C=4 with sublinear tf is the stronger of the two
    settings measured in issue 13 (0.406 / 0.531 test macro/micro-F1 on val_holdout, against 0.373 / 0.487
    with scikit-learn's defaults)."""

    ngram_min: int = 1
    ngram_max: int = 3
    sublinear_tf: bool = True
    C: float = 4.0


def targets(rows: list[KoteRow]) -> np.ndarray:
    """``(len(rows), 44)`` 0/1 gold labels."""
    matrix = np.zeros((len(rows), NUM_LABELS), dtype=np.int64)
    for i, row in enumerate(rows):
        matrix[i, list(row.labels)] = 1
    return matrix


def tfidf_logreg_scores(
    train: list[KoteRow], evaluated: list[list[KoteRow]], settings: TfidfSettings = TfidfSettings()
) -> list[np.ndarray]:
    """Per-label probabilities ``(n, 44)`` for each list in ``evaluated`` from a model fit on ``train``.

    A label with no training comment cannot be learnt; scikit-learn then predicts it never (score 0).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer  # only where floors are computed
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    vectorizer = TfidfVectorizer(
        analyzer="char",
        ngram_range=(settings.ngram_min, settings.ngram_max),
        sublinear_tf=settings.sublinear_tf,
    )
    features = vectorizer.fit_transform([r.text for r in train])
    classifier = OneVsRestClassifier(LogisticRegression(C=settings.C, solver="liblinear"))
    classifier.fit(features, targets(train))
    return [classifier.predict_proba(vectorizer.transform([r.text for r in rows])) for rows in evaluated]


def floor_scores(
    splits: KoteSplits, settings: TfidfSettings = TfidfSettings()
) -> dict[str, list[np.ndarray]]:
    """Each floor's ``[val scores, test scores]``, both ``(n, 44)``."""
    prior = targets(splits.train).mean(0)
    constant = {
        "every_label": np.ones(NUM_LABELS),
        "label_prior": prior,
    }
    scores = {
        name: [np.broadcast_to(row, (len(rows), NUM_LABELS)) for rows in (splits.val, splits.test)]
        for name, row in constant.items()
    }
    scores["tfidf_logreg"] = tfidf_logreg_scores(splits.train, [splits.val, splits.test], settings)
    return scores


def compute_floors(splits: KoteSplits, settings: TfidfSettings = TfidfSettings()) -> dict[str, Any]:
    """Each floor's report, shaped as metrics.json's (``threshold``, ``val``, ``test``)."""
    gold = [torch.from_numpy(targets(rows)) for rows in (splits.val, splits.test)]
    reports = {}
    for name, (val, test) in floor_scores(splits, settings).items():
        val_scored, test_scored = (
            ScoredSplit(torch.tensor(np.array(s), dtype=torch.float32), g)
            for s, g in zip((val, test), gold, strict=True)
        )
        reports[name] = threshold_and_reports(val_scored, test_scored).to_json()
    return reports


def rows_key(splits: KoteSplits, settings: TfidfSettings = TfidfSettings()) -> str:
    """SHA-256 of every row (id, text, labels) of the three splits and the floor settings."""
    digest = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
    for name in ("train", "val", "test"):
        for row in getattr(splits, name):
            digest.update(json.dumps([name, row.id, row.text, list(row.labels)], ensure_ascii=False).encode())
    return digest.hexdigest()


def write_floors(splits: KoteSplits, output_dir: str | Path, cache_dir: str | Path | None) -> Path:
    """Write ``<output_dir>/floors.json``: the floors of ``splits``, from the cache when already computed.

    Payload: ``key`` (:func:`rows_key`), ``sizes``, ``settings`` and ``floors`` (name → report).
    """
    settings = TfidfSettings()
    key = rows_key(splits, settings)
    cached = Path(cache_dir) / "floors" / f"{key}.json" if cache_dir is not None else None
    if cached is not None and cached.exists():
        floors = json.loads(cached.read_text(encoding="utf-8"))
    else:
        log.info("computing the reference floors (TF-IDF + logistic regression) for this split")
        floors = compute_floors(splits, settings)
        if cached is not None:
            write_json_atomic(cached, floors)
    payload = {"key": key, "sizes": splits.sizes(), "settings": asdict(settings), "floors": floors}
    return write_json_atomic(Path(output_dir) / FLOORS_FILE, payload)


def write_run_floors(
    splits: KoteSplits, metrics: RunMetrics, output_dir: str | Path, cache_dir: str | Path | None
) -> Path | None:
    """:func:`write_floors` for a finished run whose ``metrics`` scored all of ``splits``.

    Skipped (logged) when the run did not tune its threshold on validation or scored only part of a split
    (``trainer.limit_*_batches``): the floors would not be on the same rows. A floor that cannot be fit
    (e.g. scikit-learn finds no character in the training texts) is logged, never fails the finished run.
    """
    results, whole = metrics.results, {"val": len(splits.val), "test": len(splits.test)}
    reports = {stage: getattr(results, stage, None) for stage in whole}
    scored = {stage: report.rows for stage, report in reports.items() if report is not None}
    if results is None or results.threshold_source != "tuned on val" or scored != whole:
        log.info("reference floors skipped: this run did not score whole val and test splits")
        return None
    try:
        return write_floors(splits, output_dir, cache_dir)
    except Exception as exc:  # a reference figure must never cost the trained run its metrics.json
        log.warning("reference floors not computed: %s: %s", type(exc).__name__, exc)
        return None
