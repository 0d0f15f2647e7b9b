"""The ``chatgpt`` generator (``conf/generator/chatgpt.yaml``): OpenAI's Chat Completions API or any
OpenAI-compatible server, online (one call per item) or through the Batch API, every call cached.

Each sampled row becomes a :class:`~emoreason.generation.items.WorkItem` (its prompt and cache key); rows with
the same text and labels share one call. Calls the cache already holds are never made again, and the
dataset is rebuilt from the cache after every run, so nothing is lost by stopping one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emoreason.config import ConfigError
from emoreason.data.kote import KoteRow
from emoreason.data.reasoning import ReasoningRecord
from emoreason.generation.batch import BatchRunner, state_path
from emoreason.generation.client import ChatClient, request_body
from emoreason.generation.config import ChatGPTConfig, GenerateConfig, Mode
from emoreason.generation.cost import Budget, Pricing, affordable, estimate_prompt_tokens, worst_case_usd
from emoreason.generation.errors import GenerationError
from emoreason.generation.generator import Outcome
from emoreason.generation.items import WorkItem, build_items
from emoreason.generation.online import OnlineRunner
from emoreason.generation.progress import ProgressBar, call_totals, dataset_cost, item_outcomes
from emoreason.generation.prompt import Message, PromptTemplate
from emoreason.generation.ratelimit import RateLimiter
from emoreason.generation.store import CacheEntry, GenerationCache, read_entries

log = logging.getLogger(__name__)

RUNNERS: dict[Mode, type[OnlineRunner] | type[BatchRunner]] = {
    Mode.online: OnlineRunner,
    Mode.batch: BatchRunner,
}
"""How ``generator.mode`` makes its calls; both take the same arguments and return a ``CallOutcome``."""


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


def price_override(model: str) -> str:
    """A Hydra override that adds a price for ``model``, whatever characters its name holds.

    ``generator.prices.<model>.input=`` cannot work for names with ``.`` (a key separator) or ``:``; a dict
    merged with ``++`` can, with Hydra's escapes for the characters its override grammar reserves.
    """
    escaped = "".join(f"\\{c}" if c in "\\()[]{}:=, \t" else c for c in model)
    return f"'++generator.prices={{{escaped}:{{input:0.0,output:0.0}}}}'"


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


@dataclasses.dataclass
class ChatGPTGenerator(ChatGPTConfig):
    """Reasoning from a Chat Completions server; its fields (:class:`ChatGPTConfig`) are the config keys.

    A server that wants another request (extra sampling parameters, a chat template switch...) is a subclass
    that overrides :meth:`request_body`: online calls and batch files both send what it returns.
    """

    def request_body(self, messages: list[Message]) -> dict[str, Any]:
        """The Chat Completions request for one item (:func:`~emoreason.generation.client.request_body`)."""
        return request_body(self, messages)

    def check(self, settings: GenerateConfig) -> None:
        """``max_cost_usd`` needs the model's price: a cap on an unknown cost would cap nothing."""
        if settings.max_cost_usd is not None and self.model not in self.prices:
            raise ConfigError(
                f"max_cost_usd needs a price for {self.model!r}: add {price_override(self.model)} with its "
                "USD per 1M input and output tokens in place of 0.0, or leave max_cost_usd out"
            )

    def inputs(self, settings: GenerateConfig) -> dict[str, str]:
        return {
            "cache_path": settings.cache_path,
            "the batch state beside cache_path": str(state_path(Path(settings.cache_path))),
        }

    def generate(self, rows: Sequence[KoteRow], settings: GenerateConfig, prompt: PromptTemplate) -> Outcome:
        """A dry run prices every pending call; a real one makes them (``mode``: online or batch)."""
        items = build_items(rows, prompt, model=self.model, temperature=self.temperature)
        head = {"mode": self.mode.value, "model": self.model, "prompt_version": prompt.version}
        if settings.dry_run:
            plan = self._plan(items, settings)
            # Complete when every call it needs fits under max_cost_usd: `dry_run=true && ...` works.
            return Outcome(head | plan, complete=plan["calls_within_max_cost"] == plan["calls_needed"])
        return asyncio.run(self._call(items, settings, prompt, head))

    def _plan(self, items: list[WorkItem], settings: GenerateConfig) -> dict[str, Any]:
        """Render and price every pending call without touching the network or the cache."""
        pricing = Pricing.for_model(self, self.model, self.mode)
        path = Path(settings.cache_path)
        entries = read_entries(path) if path.is_file() else {}
        pending = _pending(items, entries, self.retry_failed)
        if items:
            log.info("first prompt:\n%s", "\n\n".join(m["content"] for m in items[0].messages))
        expected_prompt = sum(estimate_prompt_tokens(i.messages, self.bytes_per_token) for i in pending)
        expected_output = self.expected_output_tokens * len(pending)
        worst = [worst_case_usd(i.messages, pricing, self.max_tokens) for i in pending]
        estimated = None if pricing is None else round(pricing.cost(expected_prompt, expected_output), 4)
        return {
            "items": len(items),
            "from_cache": sum(1 for i in items if (e := entries.get(i.key)) is not None and e.status == "ok"),
            "calls_needed": len(pending),
            "estimated_tokens": {"prompt": expected_prompt, "completion": expected_output},
            "estimated_cost_usd": estimated,
            "worst_case_cost_usd": None if pricing is None else round(sum(worst), 4),
            "calls_within_max_cost": affordable(worst, settings.max_cost_usd),
        }

    async def _call(
        self, items: list[WorkItem], settings: GenerateConfig, prompt: PromptTemplate, head: dict[str, Any]
    ) -> Outcome:
        api_key = require_api_key()
        with GenerationCache(settings.cache_path) as cache:
            before = dict(cache.entries)
            pending = _pending(items, before, self.retry_failed)
            log.info("%d items, %d calls needed (cache: %s)", len(items), len(pending), cache.path)
            client = ChatClient(
                self,
                api_key,
                budget=Budget(settings.max_cost_usd),
                pricing=Pricing.for_model(self, self.model, Mode.online),
                limiter=RateLimiter(self.requests_per_minute, self.tokens_per_minute),
                build_body=self.request_body,
            )
            try:
                label = f"{self.model} ({self.mode.value})"
                with ProgressBar(len(pending), label, enabled=settings.progress) as bar:
                    runner = RUNNERS[self.mode](client, cache, bar, prompt_version=prompt.version)
                    outcome = await runner.run(pending)
            finally:
                await client.close()
            after = dict(cache.entries)
        summary = {
            **head,
            **item_outcomes([i.key for i in items], before, after, outcome.unresolved),
            "requests": client.stats.requests,
            "retries": dict(client.stats.retries),
            **call_totals(outcome.stored, client.stats.discarded_cost_usd),
            "dataset_cost_usd": dataset_cost([after[k] for k in {i.key for i in items} if k in after]),
            "think_blocks_stripped": client.stats.think_stripped,
            **({"batches": outcome.batches} if outcome.batches else {}),
            "cache": str(cache.path),
        }
        last = client.stats.last_failure
        if last is not None and summary["completed"] < len(items):
            summary["last_error"] = f"{last.reason}: {last.message}"
        fatal: GenerationError | None = client.stopped
        return Outcome(summary, summary["completed"] == len(items), _dataset(items, after), fatal)
