"""Typed schemas for ``generate.py``'s config, so a typo or a bad value fails before any paid call.

The YAML under ``conf/`` supplies the values; :func:`load_config` merges them into these dataclasses with
``OmegaConf.structured``, which rejects unknown keys and wrong types naming the key, and then runs the range
checks in ``__post_init__``. The generator is the class ``generator._target_`` names, merged into the same
way when it is a dataclass (both built-in ones are), and the KOTE source is the data group's
``data.source``, instantiated. Every error is a :class:`~emoreason.config.ConfigError` whose message starts
with the full key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emoreason.config import ConfigError
from emoreason.data.sources import KoteSource
from emoreason.generation.generator import Generator


class Mode(Enum):
    """``online``: one Chat Completions call per item. ``batch``: the Batch API, half the price, ≤24 h."""

    online = "online"
    batch = "batch"


@dataclass
class Price:
    """USD per million tokens for one model."""

    input: float = MISSING
    output: float = MISSING


@dataclass
class PromptConfig:
    """The prompt: a version string (part of every cache key and record) and two templates.

    ``user`` must use exactly the fields ``{text}`` and ``{labels}``.
    """

    version: str = MISSING
    system: str = MISSING
    user: str = MISSING


@dataclass
class ChatGPTConfig:
    """Settings of the ``chatgpt`` generator (any OpenAI-compatible Chat Completions server).

    :class:`~emoreason.generation.chatgpt.ChatGPTGenerator` adds what it does; the settings stay here because
    the client and the price table read them.
    """

    name: str = "chatgpt"
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    mode: Mode = Mode.online
    temperature: float | None = 0.7
    max_tokens: int = 512
    token_limit_param: str = "auto"
    strip_think: bool = True
    concurrency: int = 16
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_wait_s: float = 120.0
    retry_failed: bool = False
    expected_output_tokens: int = 200
    bytes_per_token: float = 4.0
    prices: dict[str, Price] = field(default_factory=dict)
    batch_discount: float = 0.5
    batch_poll_s: float = 30.0
    batch_wait: bool = True
    batch_max_requests: int = 50_000
    batch_max_tokens: int | None = 2_000_000

    def __post_init__(self) -> None:
        _check(bool(self.model.strip()), "generator.model", "must name a model", self.model)
        _check(
            self.temperature is None or 0.0 <= self.temperature <= 2.0,
            "generator.temperature",
            "must be in [0, 2], or null to leave it out (reasoning models accept only their default)",
            self.temperature,
        )
        params = ("auto", "max_tokens", "max_completion_tokens")
        _check(
            self.token_limit_param in params,
            "generator.token_limit_param",
            f"must be one of {params}",
            self.token_limit_param,
        )
        _check(
            1 <= self.batch_max_requests <= 50_000,
            "generator.batch_max_requests",
            "must be in [1, 50000] (the Batch API's limit)",
            self.batch_max_requests,
        )
        _check(
            self.batch_max_tokens is None or self.batch_max_tokens >= 1,
            "generator.batch_max_tokens",
            "must be a positive integer, or null for no limit",
            self.batch_max_tokens,
        )
        for key in ("max_tokens", "concurrency", "expected_output_tokens"):
            value = getattr(self, key)
            _check(value >= 1, f"generator.{key}", "must be a positive integer", value)
        _check(self.max_retries >= 0, "generator.max_retries", "must be ≥ 0", self.max_retries)
        for key in (
            "timeout_s",
            "backoff_base_s",
            "backoff_max_s",
            "max_wait_s",
            "bytes_per_token",
            "batch_poll_s",
        ):
            value = getattr(self, key)
            _check(math.isfinite(value) and value > 0, f"generator.{key}", "must be a positive number", value)
        for key in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, key)
            _check(
                value is None or value > 0,
                f"generator.{key}",
                "must be positive, or null for no limit",
                value,
            )
        _check(
            0 < self.batch_discount <= 1, "generator.batch_discount", "must be in (0, 1]", self.batch_discount
        )
        for model, price in self.prices.items():
            for side in ("input", "output"):
                value = getattr(price, side)
                _check(
                    value >= 0, f"generator.prices.{model}.{side}", "must be ≥ 0 (USD per 1M tokens)", value
                )


@dataclass
class GenerateConfig:
    """The whole ``generate.py`` config (``paths`` and ``hydra`` are only read through interpolations).

    ``source`` is the data group's KOTE source (``data.source``, the
    :class:`~emoreason.data.sources.KoteSource` that ``train.py data=kote_plain`` reads) and ``generator`` the
    instantiated ``generator._target_``; :func:`load_config` sets both.
    """

    n: int | None = 10_000
    seed: int = 0
    output: str = MISSING
    cache_path: str = MISSING
    summary_path: str | None = None
    dry_run: bool = False
    max_cost_usd: float | None = None
    progress: bool = True
    prompt: PromptConfig = MISSING
    source: Any = None
    generator: Any = None

    def __post_init__(self) -> None:
        _check(
            self.n is None or self.n >= 1,
            "n",
            "must be a positive integer, or null for the whole pool",
            self.n,
        )
        _check(
            self.max_cost_usd is None or self.max_cost_usd > 0,
            "max_cost_usd",
            "must be positive (USD), or null for no cap",
            self.max_cost_usd,
        )


BUILTIN_GENERATORS = {
    "chatgpt": "emoreason.generation.chatgpt.ChatGPTGenerator",
    "cached": "emoreason.generation.cached.CachedGenerator",
}
"""The ``_target_`` of a generator config that names none, by its ``name`` (configs written before generators
were ``_target_`` s, e.g. a copy of an old ``conf/generator/chatgpt.yaml``)."""

RENAMED = {
    "kote_dir": "data.source.root",
    "split_scheme": "data.source.split_scheme",
    "holdout_size": "data.source.holdout_size",
    "download": "data.source.download",
    "verify_checksums": "data.source.verify_checksums",
}
"""Top-level keys that ``generate.py`` had before it read the data group's source, and where they went."""


def renamed_key(keys: Iterable[str]) -> ConfigError | None:
    """The error for the first key of ``keys`` (config keys or ``key=value`` overrides) that moved."""
    for key in keys:
        old = key.lstrip("~+").split("=", 1)[0]
        if old in RENAMED:
            new = RENAMED[old]
            env = " (or set KOTE_DIR)" if old == "kote_dir" else ""
            return ConfigError(
                f"{old}: renamed to {new} (generate.py samples the data group's KOTE source, as train.py "
                f"does): write {new}=...{env}"
            )
    return None


def _check(ok: bool, key: str, requirement: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"{key} {requirement}, got {value!r}")


def _typed(schema: type, values: Mapping[str, Any], prefix: str) -> Any:
    """``values`` merged into ``schema`` and instantiated; OmegaConf errors re-raised naming the full key."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except OmegaConfBaseException as exc:
        key = f"{prefix}{exc.full_key}" if exc.full_key else prefix.rstrip(".") or "config"
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{key}: {reason}") from None


def _resolved(node: DictConfig, key: str) -> Any:
    try:
        value = node[key]
        return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{key}: cannot resolve ({str(exc).splitlines()[0]})") from None


def _called(values: dict[str, Any], key: str) -> Any:
    """``values`` (a ``_target_`` and its keys) instantiated by Hydra, its errors re-raised naming ``key``."""
    try:
        return instantiate(values, _convert_="all")
    except InstantiationException as exc:
        if isinstance(exc.__cause__, ConfigError):  # the target's own refusal, naming its key
            raise exc.__cause__ from None
        reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ConfigError(f"{key}: {reason}") from None


def _instantiated(values: dict[str, Any], key: str) -> Any:
    """A dataclass ``_target_`` merged into as a typed schema (an unknown key or a wrong type is an error
    naming it, values are converted to the field's type), any other one called by Hydra."""
    target = str(values["_target_"])
    try:
        cls = get_class(target)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"{key}._target_: cannot import {target!r} ({exc})") from None
    if not dataclasses.is_dataclass(cls):
        return _called(values, key)
    return _typed(cls, {k: v for k, v in values.items() if k != "_target_"}, f"{key}.")


def _generator(node: DictConfig) -> Generator:
    generator = node.get("generator")
    if not isinstance(generator, DictConfig):
        raise ConfigError("generator: missing; choose one with generator=chatgpt or generator=cached")
    if "api_key" in generator:
        raise ConfigError(
            "generator.api_key: not a config key. The API key is read only from the OPENAI_API_KEY "
            "environment variable, so it never lands in a config dump or log; remove it from the config "
            "and export it."
        )
    values = _resolved(node, "generator")
    if values.get("_target_") is None:
        target = BUILTIN_GENERATORS.get(str(values.get("name")))
        if target is None:
            raise ConfigError(
                f"generator.name must be one of {sorted(BUILTIN_GENERATORS)}, got {values.get('name')!r} "
                "(or name a Generator class in generator._target_: docs/generation.md)"
            )
        values["_target_"] = target
    built = _instantiated(values, "generator")
    if not isinstance(built, Generator):
        raise ConfigError(
            f"generator._target_: {type(built).__qualname__} is not a generator: it needs the members of "
            "emoreason.generation.generator.Generator (name, check, inputs, generate)"
        )
    return built


def _source(node: DictConfig) -> KoteSource:
    """``data.source``: the KOTE rows the seed sample is drawn from, checked as far as reading them allows."""
    values = _resolved(node, "data").get("source") if "data" in node else None
    if not isinstance(values, dict) or "_target_" not in values:
        raise ConfigError(
            "data.source: missing; generate.yaml takes it from the data group (data=kote_plain)"
        )
    source = _called(values, "data.source")
    if type(source) is not KoteSource:
        raise ConfigError(
            f"data.source: generate.py draws its sample from KOTE itself (data=kote_plain), not from a "
            f"{type(source).__qualname__}"
        )
    return source  # its split_scheme and holdout_size are checked when it is built (KoteSource)


def load_config(cfg: DictConfig | Mapping[str, Any]) -> GenerateConfig:
    """Validate a composed ``generate`` config: ``result.source`` is a KoteSource and ``result.generator``
    the :class:`~emoreason.generation.generator.Generator` that ``generator._target_`` names."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    moved = renamed_key(str(key) for key in node)
    if moved is not None:
        raise moved
    generator = _generator(node)
    top = {str(key): _resolved(node, str(key)) for key in node if key not in ("generator", "paths", "data")}
    settings: GenerateConfig = _typed(GenerateConfig, top, "")
    settings.source = _source(node)
    settings.generator = generator
    return settings
