"""Build a run's parts from its config — shared by train.py, evaluate.py and checkpoint reloading.

Order matters and lives here once: rows → tokenizer (an embedded one is trained on the training texts) →
network (with LoRA adapters when ``lora`` is set) → LightningModule and DataModule. A checkpoint is rebuilt
without its rows: scoring needs only the checkpoint and the input it scores (:func:`evaluation_splits` reads
the run's KOTE rows when validation or test rows are wanted).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from transformers import PreTrainedTokenizerBase

from emoreason.config import ConfigError, LoaderConfig, TrainConfig, redact, validate
from emoreason.data.sampling import KoteSplits
from emoreason.data.sources import KoteSource
from emoreason.models.backbones import Backbone
from emoreason.models.lora import with_lora
from emoreason.models.methods.base import Method
from emoreason.training.checkpoints import check_stored_targets, current_targets, load_checkpoint
from emoreason.training.datamodule import KoteDataModule
from emoreason.training.module import EmotionModule
from emoreason.training.optimizers import check_factories


@dataclass
class RunParts:
    cfg: DictConfig
    splits: KoteSplits
    """The run's rows; empty (with the run's split scheme) for a checkpoint reloaded by
    :func:`load_checkpoint_parts`."""
    backbone: Backbone
    method: Method
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


def build_parts(
    cfg: DictConfig, tokenizer_state: dict[str, Any] | None = None, splits: KoteSplits | None = None
) -> RunParts:
    """Everything a run needs; ``tokenizer_state`` (from a checkpoint) replaces tokenizer training.

    ``splits`` replaces reading the data source (a rebuilt checkpoint passes none to read).
    """
    cfg = validate(cfg, TrainConfig)
    # Partials (conf/optim, conf/scheduler): the module adds the parameters and the number of steps.
    optimizer, scheduler = (instantiate(node, _convert_="all") for node in (cfg.optim, cfg.scheduler))
    check_factories(optimizer, scheduler)
    method = instantiate(cfg.method)  # before the data: a value the method refuses is a config error
    if not isinstance(method, Method):
        raise ConfigError(
            f"method._target_={cfg.method._target_} is a {type(method).__qualname__}, not a method: name a "
            "subclass of emoreason.models.methods.base.Method (docs/reasoning.md, 'Adding a method')"
        )
    if splits is None:
        splits = instantiate(cfg.data.source).load()
    backbone: Backbone = instantiate(cfg.model)
    lora = instantiate(cfg.lora) if cfg.lora is not None else None
    if tokenizer_state is not None:
        tokenizer = backbone.restore_tokenizer(tokenizer_state)
    else:
        # Reasoning (data=kote_reasoning) is text the generative methods must write, so an embedded
        # tokenizer learns its words too; without reasoning the texts (and cached tokenizer) are unchanged.
        texts = [text for row in splits.train for text in (row.text, row.reasoning) if text]
        tokenizer = backbone.load_tokenizer(texts, cfg.paths.cache_dir)
    network = method.build_model(with_lora(backbone, lora), tokenizer)
    if splits.train:  # a reloaded checkpoint has no rows, and its own weights
        method.data_dependent_init(network, splits.train)
    extra_state = {
        "config": portable_config(cfg),
        "tokenizer": backbone.tokenizer_state(tokenizer),
        # What ``auto`` resolved to: evaluation re-tunes on the same validation rows, never on training rows.
        "split_scheme": splits.scheme,
    }
    module = EmotionModule(network, method, optimizer, scheduler, extra_state)
    loader = OmegaConf.to_object(cfg.data.loader)
    assert isinstance(loader, LoaderConfig)
    datamodule = KoteDataModule(
        splits, tokenizer, method, loader, seed=cfg.seed, cache_dir=Path(cfg.paths.cache_dir)
    )
    return RunParts(cfg, splits, backbone, method, tokenizer, module, datamodule)


def load_checkpoint_parts(
    ckpt_path: str | Path, overrides: dict[str, Any] | None = None, *, trust: bool = False
) -> RunParts:
    """Rebuild a trained run from its checkpoint alone (config and tokenizer travel inside it).

    ``overrides`` maps dotted config keys (e.g. ``paths.kote_dir``) to values for a machine where paths
    differ; None values are ignored. ``trust`` (``trust_checkpoint``) lets a file that is more than plain
    data be unpickled; the stored config's ``_target_``s are checked against the allow-list either way.
    No rows are read (``parts.splits`` is empty): :func:`evaluation_splits` reads them when they are wanted.
    The stored config's ``data.source.split_scheme`` is pinned to what the run resolved (checkpoints that
    predate the record keep their configured scheme).
    """
    checkpoint = load_checkpoint(ckpt_path, trust=trust)
    if "emoreason" not in checkpoint:
        raise ValueError(
            f"{ckpt_path}: not an emoreason checkpoint (no 'emoreason' entry); was it made by train.py?"
        )
    state = checkpoint["emoreason"]
    config = current_targets(state["config"])  # classes that moved since the checkpoint was written
    check_stored_targets(config, ckpt_path)
    cfg = OmegaConf.create(config)
    for key, value in (overrides or {}).items():
        if value is not None:
            OmegaConf.update(cfg, key, value)
    scheme = state.get("split_scheme", cfg.data.source.split_scheme)
    OmegaConf.update(cfg, "data.source.split_scheme", scheme)
    no_rows = KoteSplits(train=[], val=[], test=[], scheme=scheme)
    parts = build_parts(cfg, tokenizer_state=state["tokenizer"], splits=no_rows)
    parts.module.load_state_dict(checkpoint["state_dict"])
    parts.module.eval()
    return parts


def evaluation_splits(cfg: DictConfig) -> KoteSplits:
    """The run's KOTE rows to tune a threshold on and to test, read by its data source minus any join.

    No method reads reasoning at inference, so a ``data=kote_reasoning`` run's checkpoint scores without
    the reasoning dataset: its source is read as the :class:`KoteSource` it extends (same files, same
    splits). Raises :class:`~emoreason.data.kote.KoteDownloadError` naming the KOTE file that is missing.
    """
    source = instantiate(cfg.data.source)
    return KoteSource(**{f.name: getattr(source, f.name) for f in fields(KoteSource)}).load()
