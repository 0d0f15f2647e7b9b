"""``evaluate(cfg)``: re-score a checkpoint on test (or any KOTE-format file), or tag new comments."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from emoreason.components import RunParts, load_checkpoint_parts
from emoreason.config import ConfigError, EvaluateConfig, validate
from emoreason.data.kote import KoteRow, read_kote_tsv
from emoreason.evaluation.report import (
    per_label_markdown,
    prediction_records,
)
from emoreason.evaluation.scoring import predict_scores, threshold_and_reports
from emoreason.io import write_json_atomic, write_jsonl_atomic, write_text_atomic

log = logging.getLogger(__name__)


def _scores_of(parts: RunParts, rows: list[KoteRow], batch_size: int) -> Any:
    dm = parts.datamodule
    dm.loader.eval_batch_size = batch_size
    return predict_scores(parts.module, dm.dataloader(dm.encode_rows(rows), train=False))


def _read_comments(path: Path) -> list[KoteRow]:
    """One comment per non-empty line; the line number is the row ID."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [KoteRow(id=str(n), text=line, labels=()) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise ConfigError(f"input_file {path} holds no comment (one comment per line expected)")
    return rows


def tag_rows(
    parts: RunParts, rows: list[KoteRow], threshold: float, top_k: int, batch_size: int
) -> list[dict]:
    """Labels above ``threshold``, the ``top_k`` best label scores and, for a generative method, its text."""
    split = _scores_of(parts, rows, batch_size)
    tagged = []
    for record in prediction_records(rows, split[0], threshold, split.generated):
        ranked = sorted(record["scores"].items(), key=lambda pair: -pair[1])
        tagged.append(
            {
                "id": record["id"],
                "text": record["text"],
                "labels": record["predicted"],
                **({"generated": record["generated"]} if "generated" in record else {}),
                "top": [{"label": name, "score": score} for name, score in ranked[:top_k]],
                "scores": record["scores"],
            }
        )
    return tagged


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score or tag as configured; returns the metrics payload (or the tagged rows under ``tagged``)."""
    cfg = validate(cfg, EvaluateConfig)
    if not cfg.ckpt_path:
        raise ConfigError(
            "ckpt_path is required: python evaluate.py ckpt_path=outputs/<run>/checkpoints/last.ckpt"
        )
    if not Path(cfg.ckpt_path).exists():
        raise ConfigError(f"ckpt_path {cfg.ckpt_path} does not exist")
    parts = load_checkpoint_parts(
        cfg.ckpt_path, {"paths.kote_dir": cfg.paths.kote_dir, "paths.cache_dir": cfg.paths.cache_dir,
                        "paths.reasoning_path": cfg.paths.reasoning_path},
    )  # fmt: skip
    output_dir = Path(cfg.paths.output_dir)
    threshold = cfg.threshold
    val = _scores_of(parts, parts.splits.val, cfg.eval_batch_size) if threshold is None else None
    if cfg.text is not None or cfg.input_file is not None:
        if threshold is None:
            threshold = threshold_and_reports(val, None)["threshold"]
        rows = (
            [KoteRow(id="text", text=cfg.text, labels=())]
            if cfg.text
            else _read_comments(Path(cfg.input_file))
        )
        tagged = tag_rows(parts, rows, threshold, cfg.top_k, cfg.eval_batch_size)
        destination = Path(cfg.output_file) if cfg.output_file else output_dir / "tags.jsonl"
        destination.parent.mkdir(parents=True, exist_ok=True)
        with destination.open("w", encoding="utf-8") as handle:
            for item in tagged:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
        for item in tagged[:5]:
            top = ", ".join(f"{t['label']} {t['score']:.2f}" for t in item["top"])
            print(f"{item['text'][:60]!r}: {item['labels'] or '(none above threshold)'} | top: {top}")
        return {"threshold": threshold, "tagged": tagged, "output_file": str(destination)}

    test_rows = read_kote_tsv(cfg.data_file) if cfg.data_file else parts.splits.test
    test = _scores_of(parts, test_rows, cfg.eval_batch_size)
    report: dict[str, Any] = {
        "checkpoint": str(cfg.ckpt_path),
        "model": parts.backbone.name,
        "method": parts.method.name,
        "seed": parts.cfg.seed,
        "split_scheme": parts.splits.scheme,
        "test_source": cfg.data_file or parts.splits.sources.get("test"),
        **threshold_and_reports(val, test, threshold),
    }
    write_json_atomic(output_dir / "metrics.json", report)
    records = prediction_records(test_rows, test[0], report["threshold"], test.generated)
    write_jsonl_atomic(output_dir / "test_predictions.jsonl", records)
    write_text_atomic(output_dir / "per_label_f1.md", per_label_markdown(report))
    tuned = report["test"]["tuned"]
    log.info("test macro-F1 %.4f micro-F1 %.4f (threshold %.2f)", tuned["macro_f1"], tuned["micro_f1"],
             report["threshold"])  # fmt: skip
    return report
