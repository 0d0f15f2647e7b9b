"""What a run shows while it works (a progress bar) and what it reports when it ends (the summary)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from emoreason.generation.store import CacheEntry


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- items/s" if speed is None else f"{speed:.1f} items/s")


class ProgressBar:
    """done/total, rate, cost so far and ETA; silent when ``enabled`` is False (tests, piped output)."""

    def __init__(self, total: int, description: str, *, enabled: bool) -> None:
        self.cost_usd = 0.0
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TextColumn("${task.fields[cost]:.4f}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            disable=not enabled,
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(description, total=total, cost=0.0)

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def advance(self, cost_usd: float | None = None, steps: int = 1) -> None:
        self.cost_usd += cost_usd or 0.0
        self._progress.update(self._task, advance=steps, cost=self.cost_usd)

    def set_completed(self, completed: int) -> None:
        self._progress.update(self._task, completed=completed)


def call_totals(entries: list[CacheEntry]) -> dict[str, Any]:
    """Tokens and cost of the calls made in this run (one entry per call)."""
    prompt = sum(e.record.usage.prompt_tokens for e in entries if e.record.usage)
    completion = sum(e.record.usage.completion_tokens for e in entries if e.record.usage)
    costs = [e.cost_usd for e in entries if e.cost_usd is not None]
    unpriced = sum(1 for e in entries if e.cost_usd is None)
    cost = sum(costs)
    return {
        "calls_finished": len(entries),
        "tokens": {"prompt": prompt, "completion": completion, "total": prompt + completion},
        "cost_usd": round(cost, 6),
        "cost_per_item_usd": round(cost / len(costs), 8) if costs else None,
        "calls_without_price": unpriced,
    }


def item_outcomes(
    keys: list[str],
    before: Mapping[str, CacheEntry],
    after: Mapping[str, CacheEntry],
    unresolved: Mapping[str, str],
) -> dict[str, Any]:
    """Per item (an id; duplicates of one text share a call): what happened to it in this run.

    ``failed`` holds failures by reason (recorded ones, and transient ones a rerun retries); ``not_started``
    the items no call was made for (``budget``, ``aborted``); ``waiting`` those in a batch still running.
    """
    from_cache = generated = 0
    failed: Counter[str] = Counter()
    not_started: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    for key in keys:
        entry = after.get(key)
        reason = unresolved.get(key, "not_attempted")
        if entry is not None and entry.status == "ok":
            old = before.get(key)
            if old is not None and old.status == "ok":
                from_cache += 1
            else:
                generated += 1
        elif entry is not None:
            failed[str(entry.reason)] += 1
        elif reason in ("budget", "aborted"):
            not_started[reason] += 1
        elif reason in ("batch_pending", "waiting_for_batch"):
            waiting[reason] += 1
        else:
            failed[reason] += 1
    return {
        "items": len(keys),
        "completed": from_cache + generated,
        "from_cache": from_cache,
        "generated": generated,
        "failed": dict(failed),
        "not_started": dict(not_started),
        "waiting": dict(waiting),
    }


def summary_table(summary: Mapping[str, Any]) -> Table:
    """The summary as a two-column table for the console."""
    table = Table(title="Reasoning generation", show_header=False)
    for key, value in summary.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        table.add_row(key, str(value))
    return table
