"""``generate(cfg)``: sample the seed comments, get their reasoning, write the dataset, report what it took.

The dataset at ``output`` is rewritten, atomically, from the cache after every run, with every item that has
reasoning so far; ``summary["complete"]`` says whether that is all of them. Nothing is lost by stopping a run
(Ctrl-C, crash, budget, fatal error): the cache holds every finished call and the next run skips them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console

from emoreason.data.kote import KoteDownloadError, KoteFormatError, KoteRow
from emoreason.data.reasoning import ReasoningRecord, write_reasoning_jsonl
from emoreason.data.reasoning_stats import write_generation_card
from emoreason.data.sampling import load_splits, seed_sample
from emoreason.generation.batch import BatchRunner, state_path
from emoreason.generation.cached import serve_cached
from emoreason.generation.client import ChatClient
from emoreason.generation.config import CachedConfig, ChatGPTConfig, GenerateConfig, Mode, load_config
from emoreason.generation.cost import (
    Budget,
    Pricing,
    affordable,
    estimate_prompt_tokens,
    worst_case_usd,
)
from emoreason.generation.errors import ConfigError, GenerationError
from emoreason.generation.items import WorkItem, build_items
from emoreason.generation.online import run_online
from emoreason.generation.prompt import PromptTemplate
from emoreason.generation.ratelimit import RateLimiter
from emoreason.generation.report import (
    ProgressBar,
    call_totals,
    dataset_cost,
    item_outcomes,
    next_step,
    summary_table,
)
from emoreason.generation.store import CacheEntry, GenerationCache, read_entries
from emoreason.io import write_json_atomic

log = logging.getLogger(__name__)


def sample_rows(cfg: GenerateConfig) -> list[KoteRow]:
    """The seed sample, drawn exactly as training draws it: ``n`` labelled non-test rows, seeded."""
    try:
        splits = load_splits(
            cfg.kote_dir,
            cfg.split_scheme,  # type: ignore[arg-type]
            holdout_size=cfg.holdout_size,
            seed=cfg.seed,
            download=cfg.download,
            verify_checksums=cfg.verify_checksums,
        )
    except (KoteFormatError, KoteDownloadError) as exc:
        raise GenerationError(str(exc)) from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    pool = splits.train + splits.val
    try:
        return seed_sample(pool, len(pool) if cfg.n is None else cfg.n, cfg.seed)
    except ValueError as exc:
        raise ConfigError(
            f"n: {exc} (split_scheme={splits.scheme}); lower n, or n=null for all of them"
        ) from None


def require_api_key() -> str:
    """The key, from the environment only, so no config file, dump or log ever holds it."""
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not key:
        raise ConfigError(
            "OPENAI_API_KEY is not set. The chatgpt generator reads the key only from the environment: "
            "export OPENAI_API_KEY=... (any placeholder for a local server without keys). "
            "dry_run=true needs none."
        )
    return key


def _pending(items: list[WorkItem], entries: Mapping[str, CacheEntry], retry_failed: bool) -> list[WorkItem]:
    """One item per call still to make: not in the cache (or failed there, with ``retry_failed``).

    Comments with the same text and labels share a key, hence one call.
    """
    first: dict[str, WorkItem] = {}
    for item in items:
        first.setdefault(item.key, item)
    return [
        item
        for key, item in first.items()
        if (entry := entries.get(key)) is None or (entry.status == "failed" and retry_failed)
    ]


def _dataset(items: list[WorkItem], entries: Mapping[str, CacheEntry]) -> list[ReasoningRecord]:
    """Every item that has reasoning, under its own id (a shared call's record carries the first id)."""
    records = []
    for item in items:
        entry = entries.get(item.key)
        if entry is not None and entry.status == "ok":
            records.append(dataclasses.replace(entry.record, id=item.row.id))
    return records


def _dry_run(
    items: list[WorkItem], g: ChatGPTConfig, settings: GenerateConfig, pricing: Pricing | None
) -> dict[str, Any]:
    """Render and price every pending call without touching the network or the cache."""
    path = Path(settings.cache_path)
    entries = read_entries(path) if path.is_file() else {}
    pending = _pending(items, entries, g.retry_failed)
    if items:
        log.info("first prompt:\n%s", "\n\n".join(m["content"] for m in items[0].messages))
    expected_prompt = sum(estimate_prompt_tokens(i.messages, g.bytes_per_token) for i in pending)
    expected_output = g.expected_output_tokens * len(pending)
    worst = [worst_case_usd(i.messages, pricing, g.max_tokens) for i in pending]
    priced = pricing is not None
    return {
        "items": len(items),
        "from_cache": sum(1 for i in items if (e := entries.get(i.key)) is not None and e.status == "ok"),
        "calls_needed": len(pending),
        "estimated_tokens": {"prompt": expected_prompt, "completion": expected_output},
        "estimated_cost_usd": round(pricing.cost(expected_prompt, expected_output), 4) if priced else None,
        "worst_case_cost_usd": round(sum(worst), 4) if priced else None,
        "calls_within_max_cost": affordable(worst, settings.max_cost_usd),
        # A plan is complete when every call it needs fits under max_cost_usd: `dry_run=true && ...` works.
        "complete": affordable(worst, settings.max_cost_usd) == len(pending),
    }


async def _call_api(
    items: list[WorkItem], g: ChatGPTConfig, settings: GenerateConfig, prompt: PromptTemplate
) -> tuple[dict[str, Any], GenerationError | None]:
    api_key = require_api_key()
    with GenerationCache(settings.cache_path) as cache:
        before = dict(cache.entries)
        pending = _pending(items, before, g.retry_failed)
        log.info("%d items, %d calls needed (cache: %s)", len(items), len(pending), cache.path)
        client = ChatClient(
            g,
            api_key,
            budget=Budget(settings.max_cost_usd),
            pricing=Pricing.for_model(g, g.model, Mode.online),
            limiter=RateLimiter(g.requests_per_minute, g.tokens_per_minute),
        )
        batches: list[dict[str, Any]] = []
        try:
            with ProgressBar(len(pending), f"{g.model} ({g.mode.value})", enabled=settings.progress) as bar:
                if g.mode is Mode.online:
                    stored, unresolved = await run_online(
                        pending, client=client, cache=cache, progress=bar, prompt_version=prompt.version
                    )
                else:
                    runner = BatchRunner(
                        client, cache, bar, prompt_version=prompt.version, max_cost_usd=settings.max_cost_usd
                    )
                    outcome = await runner.run(pending)
                    stored, unresolved, batches = outcome.stored, outcome.unresolved, outcome.batches
        finally:
            await client.close()
        after = dict(cache.entries)
    records = _dataset(items, after)
    summary = {
        **item_outcomes([i.key for i in items], before, after, unresolved),
        "requests": client.stats.requests,
        "retries": dict(client.stats.retries),
        **call_totals(stored, client.stats.discarded_cost_usd),
        "dataset_cost_usd": dataset_cost([after[k] for k in {i.key for i in items} if k in after]),
        "think_blocks_stripped": client.stats.think_stripped,
        **({"batches": batches} if batches else {}),
        "cache": str(cache.path),
    }
    last = client.stats.last_failure
    if last is not None and summary["completed"] < len(items):
        summary["last_error"] = f"{last.reason}: {last.message}"
    summary["output"] = _write_dataset(settings.output, records)
    summary["complete"] = summary["completed"] == len(items)
    return summary, client.stopped


def _write_dataset(output: str, records: list[ReasoningRecord]) -> str | None:
    if not records:
        log.warning("no item has reasoning yet: %s not written", output)
        return None
    return str(write_reasoning_jsonl(output, records))


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: equal once resolved (symlinks, ``..``), or hard links to it."""
    first, second = Path(a).expanduser(), Path(b).expanduser()
    if first.resolve() == second.resolve():
        return True
    return first.exists() and second.exists() and os.path.samefile(first, second)


def refuse_overwrites(settings: GenerateConfig) -> None:
    """Stop before anything runs if a file this run writes is one it reads (or its own cache).

    ``generator=cached generator.source=$KOTE_REASONING_PATH`` with ``output`` pointing at the same file
    would replace a 1,000-record dataset by the few records sampled; nothing a run writes may be its input.
    """
    inputs: dict[str, str] = {}
    g = settings.generator
    if isinstance(g, CachedConfig):
        inputs["generator.source"] = g.source
    else:
        inputs["cache_path"] = settings.cache_path
        inputs["the batch state beside cache_path"] = str(state_path(Path(settings.cache_path)))
    kote = Path(settings.kote_dir)
    if kote.is_dir():
        inputs |= {
            f"a KOTE file in kote_dir ({p.name})": str(p) for p in sorted(kote.iterdir()) if p.is_file()
        }
    outputs = {"output": settings.output, "summary_path": settings.summary_path}
    for out_key, out in outputs.items():
        if out is None:
            continue
        for in_key, source in inputs.items():
            if _same_file(out, source):
                raise ConfigError(
                    f"{out_key}: {out} is {in_key}; writing it would destroy that input. Give {out_key} a "
                    f"new file (e.g. {out_key}=data/generated/reasoning.jsonl)"
                )
    if settings.summary_path is not None and _same_file(settings.output, settings.summary_path):
        raise ConfigError(f"summary_path: {settings.summary_path} is also output; give them different files")


def price_override(model: str) -> str:
    """A Hydra override that adds a price for ``model``, whatever characters its name holds.

    ``generator.prices.<model>.input=`` cannot work for names with ``.`` (a key separator) or ``:``; a dict
    merged with ``++`` can, with Hydra's escapes for the characters its override grammar reserves.
    """
    escaped = "".join(f"\\{c}" if c in "\\()[]{}:=, \t" else c for c in model)
    return f"'++generator.prices={{{escaped}:{{input:0.0,output:0.0}}}}'"


def _report(summary: dict[str, Any], settings: GenerateConfig) -> None:
    if settings.summary_path:
        write_json_atomic(settings.summary_path, summary)
    log.info("summary: %s", json.dumps(summary, ensure_ascii=False))
    if settings.progress:
        Console(stderr=True).print(summary_table(summary))


def generate(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Run one generation as configured (see ``conf/generate.yaml``) and return its summary.

    Raises :class:`~emoreason.generation.errors.GenerationError` subclasses for bad config, a corrupt or busy
    cache, missing cached reasoning and fatal API errors; in the last case the dataset and summary of what
    did finish are written first.
    """
    started = time.monotonic()
    settings = load_config(cfg)
    prompt = PromptTemplate.from_config(settings.prompt)
    g = settings.generator
    if isinstance(g, ChatGPTConfig) and settings.max_cost_usd is not None and g.model not in g.prices:
        raise ConfigError(
            f"max_cost_usd needs a price for {g.model!r}: add {price_override(g.model)} with its USD per 1M "
            "input and output tokens in place of 0.0, or leave max_cost_usd out"
        )
    refuse_overwrites(settings)
    rows = sample_rows(settings)
    fatal: GenerationError | None = None
    summary: dict[str, Any] = {"generator": g.name, "dry_run": settings.dry_run}
    if isinstance(g, CachedConfig):
        records, missing = serve_cached(rows, g)
        summary |= {
            "items": len(rows),
            "completed": len(records),
            "skipped_missing": len(missing),
            "requests": 0,
            "source": g.source,
            "output": _write_dataset(settings.output, records),
            "complete": not missing or g.allow_missing,  # skipping what the source lacks was asked for
        }
    else:
        items = build_items(rows, prompt, model=g.model, temperature=g.temperature)
        summary |= {"mode": g.mode.value, "model": g.model, "prompt_version": prompt.version}
        if settings.dry_run:
            summary |= _dry_run(items, g, settings, Pricing.for_model(g, g.model, g.mode))
        else:
            result, fatal = asyncio.run(_call_api(items, g, settings, prompt))
            summary |= result
    summary["wall_s"] = round(time.monotonic() - started, 2)
    if not summary["complete"]:
        summary["next_step"] = next_step(summary)
    _report(summary, settings)
    write_generation_card(summary, f"System:\n{prompt.system}\n\nUser:\n{prompt.user}")
    if fatal is not None:
        raise fatal
    return summary
