"""Typed schemas for the settings whose typos must fail loudly, and the config resolvers.

Groups that name a ``_target_`` (model, method, data source, trainer, callbacks, loggers) are checked by
their target's signature when instantiated (and by ``tests/test_configs.py`` for every file). Everything
else is merged into these dataclasses: an unknown key, a misspelt key or a wrong type is an error naming the
key, instead of a silently ignored setting. Values are read as attributes, never with ``cfg.get(...)``, so a
``seed: 0`` is a seed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key and what to do."""


@dataclass
class LoaderConfig:
    """How batches are made (``data.loader`` in the config)."""

    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 128
    length_grouping: bool = True
    pool_factor: int = 50
    pad_to_multiple_of: int = 4
    num_workers: int = 0


@dataclass
class OptimConfig:
    """AdamW with linear warmup then linear decay to zero (``optim`` in the config)."""

    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


@dataclass
class PathsConfig:
    kote_dir: str = "data/kote"
    reasoning_path: str = "data/kote_reasoning/reasoning.jsonl"
    cache_dir: str = ".cache/emoreason"
    output_dir: str = "outputs/run"


@dataclass
class DataConfig:
    source: Any = None
    """``_target_`` of a rows source, e.g. :class:`emoreason.data.sources.KoteSource`."""
    loader: LoaderConfig = field(default_factory=LoaderConfig)


@dataclass
class TrainConfig:
    task_name: str = "train"
    seed: int = 0
    ckpt_path: str | None = None
    """Resume training from this checkpoint (step count, optimizer and scheduler state)."""
    trust_checkpoint: bool = False
    """Unpickle ``ckpt_path`` in full if it is more than tensors and plain data (runs any code it holds)."""
    train: bool = True
    test: bool = True
    tags: list[str] = field(default_factory=list)
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: Any = None
    method: Any = None
    lora: Any = None
    """A ``conf/lora`` entry (:class:`emoreason.models.lora.LoraSettings`), or None to train every weight."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: Any = None
    strategy: Any = None
    """A ``conf/strategy`` entry: auto, ddp or a DeepSpeed ZeRO stage."""
    callbacks: dict[str, Any] = field(default_factory=dict)
    logger: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    """Free-form notes recorded with the run (not read by the code)."""


@dataclass
class EvaluateConfig:
    task_name: str = "evaluate"
    ckpt_path: str | None = None
    trust_checkpoint: bool = False
    """Unpickle ``ckpt_path`` in full if it is more than tensors and plain data (runs any code it holds)."""
    data_file: str | None = None
    """A KOTE-format TSV to score instead of the run's own test split."""
    text: str | None = None
    """One comment to tag; prints label scores."""
    input_file: str | None = None
    """A UTF-8 file, one comment per line, to tag into ``output_file`` (JSONL)."""
    output_file: str | None = None
    threshold: float | None = None
    """Decision threshold; None re-tunes it on the run's validation split."""
    top_k: int = 5
    paths: PathsConfig = field(default_factory=PathsConfig)
    eval_batch_size: int = 128


def validate(cfg: DictConfig, schema: type) -> DictConfig:
    """``cfg`` merged onto ``schema``: unknown keys and wrong types raise :class:`ConfigError`."""
    hydra_node = cfg.get("hydra") if isinstance(cfg, DictConfig) else None
    plain = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]) if hydra_node is not None else cfg
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), plain)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid configuration: {exc}".strip()) from None
    return merged


SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|password|passwd|credential|^token$|access[_-]?token|auth[_-]?token|hf[_-]?token)",
    re.IGNORECASE,
)
"""Key names whose values are credentials (but not e.g. ``tokenizer_kind`` or ``max_tokens``)."""


def redact(value: Any) -> Any:
    """A plain copy of ``value`` with every secret-looking key's value replaced; safe to log or dump."""
    if isinstance(value, dict):
        return {k: "<redacted>" if SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _auto_precision() -> str:
    """bf16 mixed precision where the GPU supports it, full fp32 on CPU."""
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


def _wandb_offline() -> bool:
    """W&B goes offline by itself when no API key is in the environment (runs sync later)."""
    return not os.environ.get("WANDB_API_KEY")


def register_resolvers() -> None:
    """Idempotent: entry points and tests call it before composing."""
    for name, fn in (("auto_precision", _auto_precision), ("wandb_offline", _wandb_offline)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
