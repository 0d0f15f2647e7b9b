"""Build a run's parts from its config — shared by train.py, evaluate.py and checkpoint reloading.

Order matters and lives here once: rows → tokenizer (an embedded one is trained on the training texts) →
network (with LoRA adapters when ``lora`` is set) → LightningModule and DataModule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from transformers import PreTrainedTokenizerBase

from emoreason.config import TrainConfig, redact, validate
from emoreason.data.datamodule import KoteDataModule, LoaderConfig
from emoreason.data.sampling import KoteSplits
from emoreason.models.backbones import Backbone
from emoreason.models.lora import with_lora
from emoreason.training.checkpoints import load_checkpoint
from emoreason.training.module import EmotionModule, OptimConfig


@dataclass
class RunParts:
    cfg: DictConfig
    splits: KoteSplits
    backbone: Backbone
    method: Any
    tokenizer: PreTrainedTokenizerBase
    module: EmotionModule
    datamodule: KoteDataModule


def portable_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as a checkpoint stores it: ``paths`` resolved, other interpolations kept.

    Keeping ``${paths.kote_dir}``-style links means a checkpoint evaluated on another machine follows that
    machine's paths (evaluate.py overrides ``paths``), while Hydra-only values like the output dir are
    frozen to what they were. Secrets are redacted.
    """
    container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    container.pop("hydra", None)
    container["paths"] = OmegaConf.to_container(cfg.paths, resolve=True)
    return redact(container)


def build_parts(cfg: DictConfig, tokenizer_state: dict[str, Any] | None = None) -> RunParts:
    """Everything a run needs; ``tokenizer_state`` (from a checkpoint) replaces tokenizer training."""
    cfg = validate(cfg, TrainConfig)
    splits = instantiate(cfg.data.source).load()
    backbone: Backbone = instantiate(cfg.model)
    method = instantiate(cfg.method)
    lora = instantiate(cfg.lora) if cfg.lora is not None else None
    if tokenizer_state is not None:
        tokenizer = backbone.restore_tokenizer(tokenizer_state)
    else:
        # Reasoning (data=kote_reasoning) is text the generative methods must write, so an embedded
        # tokenizer learns its words too; without reasoning the texts (and cached tokenizer) are unchanged.
        texts = [text for row in splits.train for text in (row.text, row.reasoning) if text]
        tokenizer = backbone.load_tokenizer(texts, cfg.paths.cache_dir)
    network = method.build_model(with_lora(backbone, lora), tokenizer)
    extra_state = {
        "config": portable_config(cfg),
        "tokenizer": backbone.tokenizer_state(tokenizer),
    }
    optim = OmegaConf.to_object(cfg.optim)
    assert isinstance(optim, OptimConfig)
    module = EmotionModule(network, method, optim, extra_state)
    loader = OmegaConf.to_object(cfg.data.loader)
    assert isinstance(loader, LoaderConfig)
    datamodule = KoteDataModule(
        splits, tokenizer, method, loader, seed=cfg.seed, cache_dir=Path(cfg.paths.cache_dir)
    )
    return RunParts(cfg, splits, backbone, method, tokenizer, module, datamodule)


def load_checkpoint_parts(ckpt_path: str | Path, overrides: dict[str, Any] | None = None) -> RunParts:
    """Rebuild a trained run from its checkpoint alone (config and tokenizer travel inside it).

    ``overrides`` maps dotted config keys (e.g. ``paths.kote_dir``) to values for a machine where paths
    differ; None values are ignored.
    """
    checkpoint = load_checkpoint(ckpt_path)
    if "emoreason" not in checkpoint:
        raise ValueError(
            f"{ckpt_path}: not an emoreason checkpoint (no 'emoreason' entry); was it made by train.py?"
        )
    state = checkpoint["emoreason"]
    cfg = OmegaConf.create(state["config"])
    for key, value in (overrides or {}).items():
        if value is not None:
            OmegaConf.update(cfg, key, value)
    parts = build_parts(cfg, tokenizer_state=state["tokenizer"])
    parts.module.load_state_dict(checkpoint["state_dict"])
    parts.module.eval()
    return parts
