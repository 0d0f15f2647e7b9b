"""Online mode: ``concurrency`` workers, one Chat Completions call per pending item, each stored at once."""

from __future__ import annotations

import asyncio

from emoreason.generation.client import AbortedError, ChatClient, ItemRejectedError, RetriesExhaustedError
from emoreason.generation.cost import BudgetExhaustedError
from emoreason.generation.errors import GenerationError
from emoreason.generation.items import WorkItem, entry_from_result, rejected_entry
from emoreason.generation.report import ProgressBar
from emoreason.generation.store import CacheEntry, GenerationCache


async def run_online(
    pending: list[WorkItem],
    *,
    client: ChatClient,
    cache: GenerationCache,
    progress: ProgressBar,
    prompt_version: str,
) -> tuple[list[CacheEntry], dict[str, str]]:
    """Call the API for every pending item; return the entries stored and why the other keys were not.

    The unresolved reasons are a transient failure's (``rate_limited``, ``timeout``...: retried by a rerun),
    ``budget`` (not started: the next call would not fit under ``max_cost_usd``) or ``aborted`` (not started
    or not retried after the run was stopped: a fatal error, the circuit breaker, a wait over
    ``max_wait_s``). Calls already in flight when the budget runs out or a fatal error
    occurs are allowed to finish, so work that is paid for is kept.
    """
    stored: list[CacheEntry] = []
    unresolved: dict[str, str] = {}
    queue = iter(pending)

    async def worker() -> None:
        for item in queue:
            if client.stopped is not None or client.budget.exhausted:
                unresolved[item.key] = "aborted" if client.stopped is not None else "budget"
                continue
            try:
                result, verdict = await client.complete(item.messages)
            except BudgetExhaustedError:
                unresolved[item.key] = "budget"
                continue
            except (GenerationError, AbortedError):
                unresolved[item.key] = "aborted"
                continue
            except RetriesExhaustedError as exc:
                unresolved[item.key] = exc.reason
                progress.advance()
                continue
            except ItemRejectedError as exc:
                entry = rejected_entry(item, exc.reason, str(exc), prompt_version, "online")
            else:
                entry = entry_from_result(item, result, verdict, prompt_version, "online")
            await cache.append(entry)
            stored.append(entry)
            progress.advance(entry.cost_usd)

    workers = min(client.cfg.concurrency, len(pending))
    await asyncio.gather(*(worker() for _ in range(workers)))
    return stored, unresolved
