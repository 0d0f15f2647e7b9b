"""Experiment loggers from the ``logger`` config group (wandb, csv, none) and their clean shutdown."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def build_loggers(logger_cfg: DictConfig, run_config: dict[str, Any]) -> list[Logger]:
    """Instantiate every configured logger and record the (already redacted) resolved config in each."""
    loggers: list[Logger] = [instantiate(entry) for entry in logger_cfg.values() if entry is not None]
    for logger in loggers:
        logger.log_hyperparams(run_config)
    return loggers


@rank_zero_only
def log_final_metrics(loggers: list[Logger], metrics: dict[str, float], step: int) -> None:
    for logger in loggers:
        logger.log_metrics(metrics, step=step)
        logger.save()


@contextmanager
def finishing_wandb() -> Iterator[None]:
    """Always close the W&B run, even on a crash, so runs of a multirun never merge into one."""
    try:
        yield
    finally:
        try:
            import wandb
        except ImportError:  # pragma: no cover - wandb is a hard dependency
            return
        if wandb.run is not None:
            wandb.finish()
