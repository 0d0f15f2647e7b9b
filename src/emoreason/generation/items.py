"""Work items (one KOTE comment, its prompt and cache key), the cache entries their outcomes become, and
what a runner (online or batch) returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from emoreason.data.kote import KoteRow
from emoreason.data.reasoning import ReasoningRecord
from emoreason.generation.prompt import Message, PromptTemplate
from emoreason.generation.response import ChatResult, Verdict
from emoreason.generation.store import CacheEntry, cache_key
from emoreason.labels import label_names


@dataclass(frozen=True)
class WorkItem:
    row: KoteRow
    labels: tuple[str, ...]
    messages: list[Message]
    key: str


def build_items(
    rows: Sequence[KoteRow], prompt: PromptTemplate, *, model: str, temperature: float | None
) -> list[WorkItem]:
    """Render every prompt and key every call (no network: this is all ``dry_run`` needs)."""
    items = []
    for row in rows:
        labels = tuple(label_names(row.labels))
        key = cache_key(model=model, prompt=prompt, temperature=temperature, text=row.text, labels=labels)
        items.append(WorkItem(row, labels, prompt.render(row.text, labels), key))
    return items


def _record(
    item: WorkItem, reasoning: str, result: ChatResult | None, prompt_version: str
) -> ReasoningRecord:
    return ReasoningRecord(
        id=item.row.id,
        text=item.row.text,
        labels=item.labels,
        reasoning=reasoning,
        model=result.model if result else None,
        prompt_version=prompt_version,
        usage=result.usage if result else None,
        finish_reason=result.finish_reason if result else None,
    )


def entry_from_result(
    item: WorkItem, result: ChatResult, verdict: Verdict, prompt_version: str, mode: str
) -> CacheEntry:
    """A finished call as a cache entry: reasoning, or a failure that would repeat if called again.

    ``verdict`` (from :func:`response.judge`) is ``ok`` or ``recorded``: a transient answer is never stored.
    Recorded failures (truncated, refused, filtered, empty, unknown finish_reason) were paid for and keep
    whatever text came back, instead of being retried blindly.
    """
    ok = verdict.kind == "ok"
    return CacheEntry(
        key=item.key,
        status="ok" if ok else "failed",
        record=_record(item, (result.content or "").strip(), result, prompt_version),
        reason=verdict.reason,
        detail=verdict.detail,
        cost_usd=result.cost_usd,
        mode=mode,
    )


def rejected_entry(item: WorkItem, reason: str, detail: str, prompt_version: str, mode: str) -> CacheEntry:
    """An item the server rejected for good (e.g. its prompt is too long): recorded, not paid."""
    return CacheEntry(
        key=item.key,
        status="failed",
        record=_record(item, "", None, prompt_version),
        reason=reason,
        detail=detail,
        cost_usd=0.0,
        mode=mode,
    )


@dataclass
class CallOutcome:
    """What a runner did with the pending calls: the entries it stored, why each other key was not stored
    (``rate_limited``, ``budget``, ``aborted``, ``batch_pending``...), and the batches it waited on."""

    stored: list[CacheEntry] = field(default_factory=list)
    unresolved: dict[str, str] = field(default_factory=dict)
    batches: list[dict[str, Any]] = field(default_factory=list)
