"""Work items (one KOTE comment, its prompt and cache key) and the cache entries their outcomes become."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import openai

from emoreason.data.kote import KoteRow
from emoreason.data.reasoning import ReasoningRecord, Usage
from emoreason.generation.cost import Pricing
from emoreason.generation.prompt import Message, PromptTemplate
from emoreason.generation.store import CacheEntry, cache_key
from emoreason.labels import label_names


@dataclass(frozen=True)
class WorkItem:
    row: KoteRow
    labels: tuple[str, ...]
    messages: list[Message]
    key: str


@dataclass(frozen=True)
class ChatResult:
    """What one successful call returned; ``cost_usd`` is None when the model has no price or no usage."""

    content: str | None
    refusal: str | None
    finish_reason: str | None
    model: str
    usage: Usage | None
    cost_usd: float | None

    @classmethod
    def from_completion(
        cls, response: openai.types.chat.ChatCompletion, pricing: Pricing | None, requested_model: str
    ) -> ChatResult:
        """Read a Chat Completions response (online, or one line of a batch output file)."""
        choice = response.choices[0] if response.choices else None
        message = choice.message if choice else None
        usage = None
        if response.usage is not None:
            u = response.usage
            usage = Usage(u.prompt_tokens, u.completion_tokens, u.total_tokens)
        cost = None
        if usage is not None and pricing is not None:
            cost = pricing.cost(usage.prompt_tokens, usage.completion_tokens)
        return cls(
            content=message.content if message else None,
            refusal=getattr(message, "refusal", None),
            finish_reason=choice.finish_reason if choice else None,
            model=response.model or requested_model,
            usage=usage,
            cost_usd=cost,
        )


def build_items(
    rows: Sequence[KoteRow], prompt: PromptTemplate, *, model: str, temperature: float
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


def entry_from_result(item: WorkItem, result: ChatResult, prompt_version: str, mode: str) -> CacheEntry:
    """A finished call as a cache entry: reasoning, or a failure that would repeat if called again.

    Truncation (``finish_reason=length``), refusals, content filtering and empty answers were paid for and
    are recorded, with whatever text came back, instead of being retried blindly.
    """
    content = (result.content or "").strip()
    reason, detail = None, None
    if result.refusal:
        reason, detail = "refusal", result.refusal
    elif result.finish_reason == "length":
        reason, detail = (
            "truncated",
            "finish_reason=length: raise generator.max_tokens, then retry_failed=true",
        )
    elif result.finish_reason == "content_filter":
        reason, detail = "content_filter", "the provider's content filter stopped the answer"
    elif not content:
        reason, detail = "empty", f"empty answer (finish_reason={result.finish_reason})"
    return CacheEntry(
        key=item.key,
        status="ok" if reason is None else "failed",
        record=_record(item, content, result, prompt_version),
        reason=reason,
        detail=detail,
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
