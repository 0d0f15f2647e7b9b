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

from emoreason.console import RateLog
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
        # Without the bar (piped output, nohup, SLURM), a plain line every few seconds instead.
        self._plain = RateLog(description, total, unit="items", enabled=False if enabled else None)

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()
        self._plain.finish()

    def advance(self, cost_usd: float | None = None, steps: int = 1) -> None:
        self.cost_usd += cost_usd or 0.0
        self._progress.update(self._task, advance=steps, cost=self.cost_usd)
        self._plain.advance(steps)

    def set_completed(self, completed: int) -> None:
        self._progress.update(self._task, completed=completed)
        self._plain.advance(max(completed - self._plain.done, 0))


def call_totals(entries: list[CacheEntry], discarded_usd: float = 0.0) -> dict[str, Any]:
    """Tokens and cost of the calls made in this run (one entry per call).

    ``cost_usd`` is None ("unknown") as soon as one call's cost is: the server reported no usage, or the
    model has no price. A sum that silently counts those calls as free would read as "$0 spent".
    ``discarded_usd`` is what unusable answers (a transient finish_reason) cost; they are not stored.
    """
    prompt = sum(e.record.usage.prompt_tokens for e in entries if e.record.usage)
    completion = sum(e.record.usage.completion_tokens for e in entries if e.record.usage)
    costs = [e.cost_usd for e in entries if e.cost_usd is not None]
    unknown = len(entries) - len(costs)
    cost = sum(costs) + discarded_usd
    return {
        "calls_finished": len(entries),
        "tokens": {"prompt": prompt, "completion": completion, "total": prompt + completion},
        "cost_usd": None if unknown else round(cost, 6),
        "cost_per_item_usd": round(cost / len(costs), 8) if costs and not unknown else None,
        "calls_without_cost": unknown,
    }


def dataset_cost(entries: list[CacheEntry]) -> float | None:
    """What every stored call of the dataset cost, cache included; None when one call's cost is unknown."""
    costs = [e.cost_usd for e in entries]
    return None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 6)


def next_step(summary: Mapping[str, Any]) -> str:
    """One line for an incomplete run: what is missing, why, and the command or key that continues it."""
    parts = [f"{summary.get('completed', 0)} of {summary.get('items', 0)} items have reasoning"]
    recorded = summary.get("recorded_failures", 0)
    transient = sum(summary.get("failed", {}).values()) - recorded
    if transient > 0:
        parts.append(f"{transient} failed this run: rerun the same command to retry them")
    if recorded:
        parts.append(
            f"{recorded} are recorded failures ({', '.join(f'{k}={v}' for k, v in summary['failed'].items())}"
            "); rerun with generator.retry_failed=true to call them again (raise generator.max_tokens first "
            "for truncated ones)"
        )
    for reason, count in summary.get("not_started", {}).items():
        fix = "raise max_cost_usd or rerun" if reason == "budget" else "fix the error above and rerun"
        parts.append(f"{count} not started ({reason}: {fix})")
    if summary.get("waiting"):
        parts.append(
            f"{sum(summary['waiting'].values())} wait for a running batch: rerun later to collect it"
        )
    if summary.get("dry_run"):
        parts = [
            f"only {summary.get('calls_within_max_cost')} of {summary.get('calls_needed')} calls fit under "
            "max_cost_usd; raise it, or run anyway and rerun with a new budget to continue"
        ]
    if summary.get("last_error"):
        parts.append(f"last error: {summary['last_error']}")
    return "; ".join(parts)


def item_outcomes(
    keys: list[str],
    before: Mapping[str, CacheEntry],
    after: Mapping[str, CacheEntry],
    unresolved: Mapping[str, str],
) -> dict[str, Any]:
    """Per item (an id; duplicates of one text share a call): what happened to it in this run.

    ``failed`` holds failures by reason (``recorded_failures`` of them stored, called again only with
    ``retry_failed``; the others transient, retried by a rerun); ``not_started``
    the items no call was made for (``budget``, ``aborted``); ``waiting`` those in a batch still running.
    """
    from_cache = generated = recorded = 0
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
            recorded += 1
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
        "recorded_failures": recorded,
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
