"""``train(cfg)``: fit, pick the best checkpoint, tune the threshold on val, test once, write metrics.json."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.strategies import DeepSpeedStrategy
from omegaconf import DictConfig, OmegaConf

from emoreason.components import RunParts, build_parts
from emoreason.config import TrainConfig, redact, validate
from emoreason.evaluation.report import (
    per_label_markdown,
    prediction_records,
)
from emoreason.evaluation.scoring import predict_scores, threshold_and_reports
from emoreason.io import write_json_atomic, write_jsonl_atomic, write_text_atomic
from emoreason.training.checkpoints import load_checkpoint
from emoreason.training.loggers import build_loggers, finishing_wandb, log_final_metrics, log_result_tables
from emoreason.training.module import metric_key
from emoreason.training.strategies import build_strategy

log = logging.getLogger(__name__)


def _best_weights(trainer: L.Trainer, parts: RunParts) -> tuple[RunParts, str | None]:
    """The run's parts holding the best checkpoint's weights (by val macro-F1), and that checkpoint's path.

    Under DeepSpeed the trained module's parameters are partitioned or wrapped in place (ZeRO-3 leaves them
    empty on each rank), so the best weights go into a freshly built, whole module on the same device — on
    rank 0 only, the one that tests: the others would also consolidate the same ZeRO folder at once.
    """
    callback = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor), None)
    best = callback.best_model_path if callback is not None else ""
    if not (best and Path(best).exists()):
        return parts, None
    if isinstance(trainer.strategy, DeepSpeedStrategy):
        if not trainer.is_global_zero:
            return parts, best
        fresh = build_parts(parts.cfg, tokenizer_state=parts.module.extra_state["tokenizer"]).module
        parts = replace(parts, module=fresh.to(trainer.strategy.root_device))
    parts.module.load_state_dict(load_checkpoint(best)["state_dict"])
    return parts, best


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """``stage/metric`` scalars for loggers: tuned figures plain, fixed-0.5 ones with an ``@0.5`` suffix."""
    flat: dict[str, float] = {"test/threshold": report["threshold"]}
    for stage in ("val", "test"):
        if stage not in report:
            continue
        for variant, suffix in (("tuned", ""), ("at_0.5", "@0.5")):
            figures = report[stage][variant]
            for name in ("macro_f1", "micro_f1", "weighted_f1"):
                flat[metric_key(f"{stage}_final" if stage == "val" else stage, name) + suffix] = figures[name]
        if stage == "test":
            for label, value in report[stage]["tuned"]["per_label_f1"].items():
                flat[metric_key("test", "f1", label)] = value
    return flat


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job as configured; return the metrics.json payload."""
    started = time.perf_counter()
    cfg = validate(cfg, TrainConfig)
    L.seed_everything(cfg.seed, workers=True)
    parts = build_parts(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    run_config = redact(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.save(OmegaConf.create(run_config), output_dir / "config.yaml")
    log.info("data: %s rows (%s split)", parts.splits.sizes(), parts.splits.scheme)

    with finishing_wandb():
        loggers = build_loggers(cfg.logger, run_config)
        callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
        if not loggers:  # an LR monitor needs somewhere to write (logger=none, debug runs)
            callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
        strategy = build_strategy(cfg.strategy)
        if isinstance(strategy, DeepSpeedStrategy) and cfg.lora is not None:
            strategy.exclude_frozen_parameters = True  # LoRA checkpoints: adapters and heads, not 5.8B frozen
        trainer: L.Trainer = instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers or False, strategy=strategy
        )
        if cfg.train:
            trainer.fit(parts.module, datamodule=parts.datamodule, ckpt_path=cfg.ckpt_path)
        elif cfg.ckpt_path:
            parts.module.load_state_dict(load_checkpoint(cfg.ckpt_path)["state_dict"])
        parts, best = _best_weights(trainer, parts) if cfg.train else (parts, cfg.ckpt_path)
        report: dict[str, Any] = {
            "model": parts.backbone.name,
            "method": parts.method.name,
            "seed": cfg.seed,
            "split_scheme": parts.splits.scheme,
            "data_sizes": parts.splits.sizes(),
            "data_sources": parts.splits.sources,
            "best_checkpoint": best,
            "global_step": trainer.global_step,
            "tags": list(cfg.tags),
        }
        if cfg.test and trainer.is_global_zero:
            dm = parts.datamodule
            dm.setup("test")
            val = predict_scores(parts.module, dm.dataloader(dm.datasets["val"], train=False, shard=False))
            test = predict_scores(parts.module, dm.dataloader(dm.datasets["test"], train=False, shard=False))
            report.update(threshold_and_reports(val, test))
            log_final_metrics(trainer.loggers, flat_metrics(report), trainer.global_step)
            records = prediction_records(parts.splits.test, test[0], report["threshold"], test.generated)
            write_jsonl_atomic(output_dir / "test_predictions.jsonl", records)
            log_result_tables(trainer.loggers, report, records, parts.splits.test, trainer.global_step)
            write_text_atomic(output_dir / "per_label_f1.md", per_label_markdown(report))
            tuned = report["test"]["tuned"]
            log.info(
                "test macro-F1 %.4f micro-F1 %.4f (threshold %.2f tuned on val)",
                tuned["macro_f1"], tuned["micro_f1"], report["threshold"],
            )  # fmt: skip
        report["wall_time_s"] = round(time.perf_counter() - started, 2)
        if trainer.is_global_zero:
            write_json_atomic(output_dir / "metrics.json", report)
    return report
