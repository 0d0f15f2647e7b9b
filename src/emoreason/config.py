"""Typed schemas for the settings whose typos must fail loudly, and the config resolvers.

Groups that name a ``_target_`` (model, method, data source, optimizer, scheduler, trainer, callbacks,
loggers) are checked by their target's signature: when instantiated, and for a ``_partial_`` one (optimizer,
scheduler: called only once training starts) by :func:`validate` at start; ``tests/test_configs.py`` checks
every file. Everything else is merged into these dataclasses: an unknown key, a misspelt key or a wrong type
is an error naming the key, instead of a silently ignored setting. Values are read as attributes, never with
``cfg.get(...)``, so a ``seed: 0`` is a seed.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import types
import typing
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from hydra.utils import get_object
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
    optim: Any = None
    """A ``conf/optim`` entry: an optimizer ``_target_`` with ``_partial_: true`` (parameters come later)."""
    scheduler: Any = None
    """A ``conf/scheduler`` entry: a learning-rate schedule ``_target_`` with ``_partial_: true``."""
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


class Bound(typing.NamedTuple):
    """An inclusive range, or with ``high_open`` one that excludes its upper end."""

    low: float | None
    high: float | None = None
    high_open: bool = False

    def holds(self, value: float) -> bool:
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return not (self.low is not None and value < self.low) and not above

    def __str__(self) -> str:
        if self.high is None:
            return f"at least {self.low}"
        return f"in [{self.low}, {self.high}{')' if self.high_open else ']'}"


BOUNDS: dict[str, Bound] = {
    "data.loader.batch_size": Bound(1),
    "data.loader.eval_batch_size": Bound(1),
    "data.loader.max_length": Bound(1),
    "data.loader.pool_factor": Bound(1),
    "data.loader.pad_to_multiple_of": Bound(1),
    "data.loader.num_workers": Bound(0),
    "threshold": Bound(0.0, 1.0),
    "top_k": Bound(0),
    "eval_batch_size": Bound(1),
    "lora.r": Bound(1),
    "lora.alpha": Bound(1),
    "lora.dropout": Bound(0.0, 1.0, high_open=True),  # 1.0 zeroes every adapter input: they never learn
}
"""Ranges of the schemas' numbers (where a schema has the key): the type check alone lets ``batch_size=0``
or ``threshold=1.5`` through to fail (or silently do nothing) minutes later."""


def _check_bounds(cfg: DictConfig) -> None:
    for key, bound in BOUNDS.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if not bound.holds(value):
            raise ConfigError(f"{key} must be {bound}, got {value}")


def validate(cfg: DictConfig, schema: type) -> DictConfig:
    """``cfg`` merged onto ``schema``: unknown keys, wrong types and numbers out of :data:`BOUNDS` raise
    :class:`ConfigError`.

    Each ``_target_`` node, at any depth, is checked against its target's signature (:func:`check_arguments`).
    """
    hydra_node = cfg.get("hydra") if isinstance(cfg, DictConfig) else None
    plain = (
        OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"]) if hydra_node is not None else cfg
    )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), plain)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"invalid configuration: {exc}".strip()) from None
    assert isinstance(merged, DictConfig)  # a dataclass schema merges into a mapping
    _check_bounds(merged)
    for key, node in _target_nodes(merged):
        check_arguments(node, key)
    return merged


def _target_nodes(node: DictConfig, prefix: str = "") -> list[tuple[str, DictConfig]]:
    """Every node with a ``_target_`` at any depth (``data.source``, ``callbacks.early_stopping``), by key."""
    found = []
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            name = f"{prefix}{key!s}"
            if "_target_" in child:
                found.append((name, child))
            found.extend(_target_nodes(child, f"{name}."))
    return found


def check_arguments(node: DictConfig, key: str) -> None:
    """Raise :class:`ConfigError` naming ``<key>.<arg>`` for an argument the ``_target_`` does not take, or a
    value that does not fit the argument's annotation.

    Why: ``instantiate`` of a ``_partial_`` node only wraps the target in ``functools.partial``, so its keys
    meet the signature when training calls it, minutes in; and a dataclass (a method) stores any value it is
    given, so ``method.inference=gnerate`` would only fail at the first evaluation. Annotations are checked by
    OmegaConf's own conversion (``float`` takes ``1`` and ``"1e-4"``, not ``"fast"``), a ``Literal`` by its
    choices; an annotation OmegaConf cannot type is skipped.
    """
    target = str(node._target_)
    try:
        fn = get_object(target)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"{key}._target_={target}: cannot be imported ({exc})") from None
    try:
        signature = inspect.signature(fn)
    except ValueError:  # a builtin (``builtins.str`` for strategy=auto): nothing to check against
        return
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return
    try:
        hints = typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    except Exception:  # annotations naming what the library imports only for type checkers: names only
        hints = {}
    for name in (str(k) for k in node if not str(k).startswith("_")):
        try:
            value = node[name]
        except OmegaConfBaseException:  # an interpolation only Hydra's run can resolve: checked when built
            continue
        if name not in signature.parameters:
            settable = [p.name for p in signature.parameters.values() if p.default is not p.empty]
            moved = MOVED_KEYS.get(f"{key}.{name}")
            raise ConfigError(
                f"{key}.{name}: moved to {moved}"
                if moved
                else f"{key}.{name}: {target} takes no such argument; it takes {', '.join(settable)}"
            )
        if name not in hints:
            continue
        choices = _literal_choices(hints[name])
        if choices is not None:
            if value not in choices:
                raise ConfigError(
                    f"{key}.{name}={value!r} is not one of {', '.join(dict.fromkeys(map(str, choices)))} "
                    f"(the {name} argument of {target})"
                )
            continue
        try:
            typed = OmegaConf.structured(make_dataclass("Argument", [(name, hints[name])]))
        except OmegaConfBaseException:
            continue
        try:
            OmegaConf.merge(typed, {name: value})
        except OmegaConfBaseException:
            raise ConfigError(
                f"{key}.{name}={value!r} is not a {_type_name(hints[name])} (the {name} argument of {target})"
            ) from None


def _literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    """The values a ``Literal`` annotation allows, also through a union of Literals and None (Lightning's
    ``precision: Optional[_PRECISION_INPUT]``); None when the annotation is anything else."""
    if annotation is type(None):
        return (None,)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)
    if origin not in (typing.Union, types.UnionType):
        return None
    members = [_literal_choices(member) for member in typing.get_args(annotation)]
    return None if any(m is None for m in members) else tuple(c for m in members if m for c in m)


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


MOVED_KEYS: dict[str, str] = {"optim.warmup_ratio": "scheduler.warmup_ratio"}
"""Keys users typed that now live elsewhere (the schedule became its own group, ``conf/scheduler``)."""


def moved_key_hint(message: str) -> str:
    """``message`` with the new name of any moved key it quotes, for the one-line error of an override."""
    hints = [f"{old} is now {new}" for old, new in MOVED_KEYS.items() if f"'{old}'" in message]
    return f"{message} ({'; '.join(hints)})" if hints else message


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
    import torch  # here, not at the top: generate.py reads this module and needs no torch (2 s to import)

    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


def _wandb_offline() -> bool:
    """W&B goes offline by itself when no API key is in the environment (runs sync later)."""
    return not os.environ.get("WANDB_API_KEY")


MAX_FOLDER_NAME_BYTES = 200
"""Below the 255-byte file-name limit of ext4, XFS and most network file systems, with room to spare."""


def job_folder_name(override_dirname: str) -> str:
    """A sweep job's folder name: its overrides, or a prefix of them plus a hash when they are too long.

    Why: a job with many overrides (a grid over several keys, long experiment names) would otherwise fail
    at its first file with ``OSError: File name too long``. The hash is of the whole override string, so the
    name is the same on every rerun and a finished job is still found and skipped.
    """
    if len(override_dirname.encode()) <= MAX_FOLDER_NAME_BYTES:
        return override_dirname
    digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:12]
    prefix = override_dirname.encode()[: MAX_FOLDER_NAME_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{prefix}-{digest}"


def register_resolvers() -> None:
    """Idempotent: entry points and tests call it before composing."""
    for name, fn in (
        ("auto_precision", _auto_precision),
        ("wandb_offline", _wandb_offline),
        ("job_folder", job_folder_name),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
