"""Typed schemas for ``generate.py``'s config, so a typo or a bad value fails before any paid call.

The YAML under ``conf/`` supplies the values; :func:`load_config` merges them into these dataclasses with
``OmegaConf.structured``, which rejects unknown keys and wrong types naming the key, and then runs the range
checks in ``__post_init__``. Every error is a :class:`ConfigError` whose message starts with the full key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emoreason.generation.errors import ConfigError


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
    """Settings of the ``chatgpt`` generator (any OpenAI-compatible Chat Completions server)."""

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
class CachedConfig:
    """Settings of the ``cached`` generator: serve reasoning from a file, never from the network."""

    name: str = "cached"
    source: str = MISSING
    allow_missing: bool = False
    model: str | None = None
    prompt_version: str | None = None


@dataclass
class GenerateConfig:
    """The whole ``generate.py`` config (``paths`` and ``hydra`` are only read through interpolations)."""

    n: int | None = 10_000
    seed: int = 0
    split_scheme: str = "auto"
    holdout_size: int = 1000
    download: bool = True
    verify_checksums: bool = True
    kote_dir: str = MISSING
    output: str = MISSING
    cache_path: str = MISSING
    summary_path: str | None = None
    dry_run: bool = False
    max_cost_usd: float | None = None
    progress: bool = True
    prompt: PromptConfig = MISSING
    generator: Any = None

    def __post_init__(self) -> None:
        _check(
            self.n is None or self.n >= 1,
            "n",
            "must be a positive integer, or null for the whole pool",
            self.n,
        )
        schemes = ("auto", "official", "val_holdout")
        _check(self.split_scheme in schemes, "split_scheme", f"must be one of {schemes}", self.split_scheme)
        _check(self.holdout_size >= 1, "holdout_size", "must be a positive integer", self.holdout_size)
        _check(
            self.max_cost_usd is None or self.max_cost_usd > 0,
            "max_cost_usd",
            "must be positive (USD), or null for no cap",
            self.max_cost_usd,
        )


GENERATORS: dict[str, type[ChatGPTConfig] | type[CachedConfig]] = {
    "chatgpt": ChatGPTConfig,
    "cached": CachedConfig,
}


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


def load_config(cfg: DictConfig | Mapping[str, Any]) -> GenerateConfig:
    """Validate a composed ``generate`` config; ``result.generator`` is a ChatGPTConfig or a CachedConfig."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    generator = node.get("generator")
    if not isinstance(generator, DictConfig):
        raise ConfigError("generator: missing; choose one with generator=chatgpt or generator=cached")
    if "api_key" in generator:
        raise ConfigError(
            "generator.api_key: not a config key. The API key is read only from the OPENAI_API_KEY "
            "environment variable, so it never lands in a config dump or log; remove it from the config "
            "and export it."
        )
    schema = GENERATORS.get(str(generator.get("name")))
    if schema is None:
        raise ConfigError(
            f"generator.name must be one of {sorted(GENERATORS)}, got {generator.get('name')!r}"
        )
    typed_generator = _typed(schema, _resolved(node, "generator"), "generator.")
    top = {key: _resolved(node, str(key)) for key in node if key not in ("generator", "paths")}
    settings: GenerateConfig = _typed(GenerateConfig, top, "")
    settings.generator = typed_generator
    return settings
