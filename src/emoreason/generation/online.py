"""Online mode (``generator.mode=online``): ``concurrency`` workers, one Chat Completions call per pending
item, each stored at once."""

from __future__ import annotations

import asyncio

from emoreason.generation.client import AbortedError, ChatClient, ItemRejectedError, RetriesExhaustedError
from emoreason.generation.cost import BudgetExhaustedError
from emoreason.generation.errors import GenerationError
from emoreason.generation.items import CallOutcome, WorkItem, entry_from_result, rejected_entry
from emoreason.generation.progress import ProgressBar
from emoreason.generation.store import GenerationCache


class OnlineRunner:
    """Calls the API once per pending item, ``generator.concurrency`` at a time.

    Batch mode's twin: :class:`~emoreason.generation.batch.BatchRunner` takes the same arguments and returns
    the same outcome.
    """

    def __init__(
        self, client: ChatClient, cache: GenerationCache, progress: ProgressBar, *, prompt_version: str
    ) -> None:
        self.client = client
        self.cache = cache
        self.progress = progress
        self.prompt_version = prompt_version

    async def run(self, pending: list[WorkItem]) -> CallOutcome:
        """Call the API for every pending item; return the entries stored and why the other keys were not.

        The unresolved reasons are a transient failure's (``rate_limited``, ``timeout``...: retried by a
        rerun), ``budget`` (not started: the next call would not fit under ``max_cost_usd``) or ``aborted``
        (not started or not retried after the run was stopped: a fatal error, the circuit breaker, a wait
        over ``max_wait_s``). Calls already in flight when the budget runs out or a fatal error occurs are
        allowed to finish, so work that is paid for is kept.
        """
        outcome = CallOutcome()
        queue = iter(pending)
        client, unresolved = self.client, outcome.unresolved

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
                    self.progress.advance()
                    continue
                except ItemRejectedError as exc:
                    entry = rejected_entry(item, exc.reason, str(exc), self.prompt_version, "online")
                else:
                    entry = entry_from_result(item, result, verdict, self.prompt_version, "online")
                await self.cache.append(entry)
                outcome.stored.append(entry)
                self.progress.advance(entry.cost_usd)

        workers = min(client.workers, len(pending))  # calls in flight: client.window
        await asyncio.gather(*(worker() for _ in range(workers)))
        return outcome
