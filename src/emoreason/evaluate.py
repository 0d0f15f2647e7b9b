"""``evaluate(cfg)``: re-score a checkpoint on test (or any KOTE-format file), or tag new comments.

A checkpoint plus the input it scores is enough: the run's KOTE rows are read only when they are used
(validation rows to re-tune the threshold when ``threshold`` is null, test rows when neither ``data_file``
nor comments are given), and the reasoning dataset never is (no method reads reasoning at inference).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from emoreason.components import RunParts, evaluation_splits, load_checkpoint_parts
from emoreason.config import ConfigError, EvaluateConfig, validate
from emoreason.data.kote import KoteDownloadError, KoteRow, read_kote_tsv
from emoreason.data.sampling import KoteSplits
from emoreason.evaluation.outputs import write_test_outputs
from emoreason.evaluation.records import RunMetrics, prediction_records, write_metrics
from emoreason.evaluation.scoring import ScoredSplit, predict_scores, threshold_and_reports
from emoreason.io import read_text_lines, write_jsonl_atomic

log = logging.getLogger(__name__)

TUNING = (
    "threshold=null re-tunes the threshold on the run's validation rows (give threshold=<value>, e.g. the "
    "run's metrics.json threshold, to skip that)"
)
TESTING = "scoring the run's test split (give data_file=<KOTE TSV> to score another file)"


def _scores_of(parts: RunParts, rows: list[KoteRow], batch_size: int) -> ScoredSplit:
    dm = parts.datamodule
    dm.loader.eval_batch_size = batch_size
    return predict_scores(parts.module, dm.dataloader(dm.encode_rows(rows), train=False), "scoring")


def _read_comments(path: Path) -> list[KoteRow]:
    """One comment per non-empty line; the line number is the row ID.

    Read by :func:`emoreason.io.read_text_lines`: a byte-order mark is dropped (left in, it becomes part of
    the first comment and changes its scores), and a file that is not UTF-8 is a :class:`ConfigError`
    naming it and how to convert it.
    """
    if not path.is_file():
        raise ConfigError(f"input_file {path} does not exist (one comment per line expected)")
    lines = [line.rstrip("\r\n") for line in read_text_lines(path, ConfigError)]
    rows = [KoteRow(id=str(n), text=line, labels=()) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise ConfigError(f"input_file {path} holds no comment (one comment per line expected)")
    return rows


def _comments(cfg: DictConfig) -> list[KoteRow] | None:
    """The comments to tag (``text=`` or ``input_file=``), or None to score labelled rows."""
    if cfg.text is not None and cfg.input_file is not None:
        raise ConfigError("give text= (one comment) or input_file= (one comment per line), not both")
    if cfg.input_file is not None:
        return _read_comments(Path(cfg.input_file))
    if cfg.text is None:
        return None
    text = cfg.text.removeprefix("\ufeff")
    if not text.strip():
        raise ConfigError(
            'text is empty: give the comment after text= (quoted for the shell: text="아 진짜 어이가 없네"), '
            "or tag a file of comments with input_file="
        )
    return [KoteRow(id="text", text=text, labels=())]


def _run_splits(parts: RunParts, why: str) -> KoteSplits:
    """The run's KOTE rows, or a :class:`ConfigError` saying what needed them and how to do without."""
    try:
        return evaluation_splits(parts.cfg)
    except KoteDownloadError as exc:
        raise ConfigError(f"{why}, which reads the run's KOTE files: {exc}") from None


def tag_rows(
    parts: RunParts, rows: list[KoteRow], threshold: float, top_k: int, batch_size: int
) -> list[dict]:
    """Labels above ``threshold``, the ``top_k`` best label scores and, for a generative method, its text."""
    split = _scores_of(parts, rows, batch_size)
    tagged = []
    for record in prediction_records(rows, split.scores, threshold, split.generated):
        ranked = sorted(record.scores.items(), key=lambda pair: -pair[1])
        tagged.append(
            {
                "id": record.id,
                "text": record.text,
                "labels": record.predicted,
                **({"generated": record.generated} if record.generated is not None else {}),
                "top": [{"label": name, "score": score} for name, score in ranked[:top_k]],
                "scores": record.scores,
            }
        )
    return tagged


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score or tag as configured; returns the metrics payload (or the tagged rows under ``tagged``).

    Inputs are read before the checkpoint is loaded, so a bad file fails at once. Raises
    :class:`ConfigError` for a missing checkpoint or input, an empty ``text``, a file that is not UTF-8, or
    KOTE files missing where validation or test rows are needed (the message says which option avoids it).
    """
    cfg = validate(cfg, EvaluateConfig)
    if not cfg.ckpt_path:
        raise ConfigError(
            "ckpt_path is required: python evaluate.py ckpt_path=outputs/<run>/checkpoints/last.ckpt"
        )
    if not Path(cfg.ckpt_path).exists():
        raise ConfigError(f"ckpt_path {cfg.ckpt_path} does not exist")
    comments = _comments(cfg)
    data_rows = read_kote_tsv(cfg.data_file) if comments is None and cfg.data_file else None
    paths = {key: cfg.paths[key] for key in ("kote_dir", "cache_dir", "reasoning_path")}
    parts = load_checkpoint_parts(
        cfg.ckpt_path, {f"paths.{key}": value for key, value in paths.items()}, trust=cfg.trust_checkpoint
    )
    output_dir = Path(cfg.paths.output_dir)
    threshold = cfg.threshold
    splits = parts.splits
    if threshold is None:
        splits = _run_splits(parts, TUNING)
    elif comments is None and data_rows is None:
        splits = _run_splits(parts, TESTING)
    val = _scores_of(parts, splits.val, cfg.eval_batch_size) if threshold is None else None
    if comments is not None:
        if threshold is None:
            threshold = threshold_and_reports(val, None).threshold
        tagged = tag_rows(parts, comments, threshold, cfg.top_k, cfg.eval_batch_size)
        destination = write_jsonl_atomic(
            Path(cfg.output_file) if cfg.output_file else output_dir / "tags.jsonl", tagged
        )
        for item in tagged[:5]:
            top = ", ".join(f"{t['label']} {t['score']:.2f}" for t in item["top"])
            print(f"{item['text'][:60]!r}: {item['labels'] or '(none above threshold)'} | top: {top}")
        return {"threshold": threshold, "tagged": tagged, "output_file": str(destination)}

    test_rows = data_rows if data_rows is not None else splits.test
    test = _scores_of(parts, test_rows, cfg.eval_batch_size)
    metrics = RunMetrics(
        model=parts.backbone.name,
        method=parts.method.name,
        seed=parts.cfg.seed,
        split_scheme=splits.scheme,
        results=threshold_and_reports(val, test, threshold),
        run={"checkpoint": str(cfg.ckpt_path), "test_source": cfg.data_file or splits.sources.get("test")},
    )
    write_metrics(output_dir, metrics)
    assert metrics.results is not None
    write_test_outputs(output_dir, metrics.results, test_rows, test)
    return metrics.to_json()
