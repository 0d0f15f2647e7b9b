"""The one place a chat-completion body enters: online replies and batch output lines are read here alike.

:func:`parse_completion` accepts any JSON body an OpenAI-compatible server sends (OpenAI's `Chat Completions
object <https://platform.openai.com/docs/api-reference/chat/object>`_, and what vLLM, Ollama, llama.cpp and
gateways send instead): missing fields become None, extra ones are ignored, a missing ``total_tokens`` is
computed, text is made encodable (a lone UTF-16 surrogate becomes U+FFFD) and ``<think>`` blocks are cut
out. A body that is no completion (HTML, an error object) raises :class:`NotACompletion`; the caller turns
it into a failure of that call with :mod:`emoreason.generation.faults`. Nothing here ever raises anything
else, whatever the body.

:func:`judge` then applies the ``finish_reason`` table (:data:`faults.FINISH_REASONS`) to say whether the
answer is reasoning, a recorded failure, or a transient failure to retry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from emoreason.data.reasoning import Usage
from emoreason.generation.cost import Pricing
from emoreason.generation.faults import error_object, finish_outcome, one_line

THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


class NotACompletion(Exception):
    """The body is not a chat completion; ``error`` is its error object, or None when it is unreadable."""

    def __init__(self, message: str, error: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error


def encodable(text: str) -> str:
    """``text`` with lone surrogates (from a JSON escape such as ``\\ud83d`` alone) replaced by U+FFFD.

    Valid pairs that arrived as two escapes are joined into their character; everything else is unchanged.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        return None
    return int(value)


def normalise_usage(value: object) -> Usage | None:
    """Token usage from any dialect's ``usage``; None unless prompt and completion counts are present.

    ``total_tokens`` is computed when missing or unusable (some servers omit it; OpenAI defines it as the
    sum of the other two).
    """
    if not isinstance(value, Mapping):
        return None
    prompt, completion = _count(value.get("prompt_tokens")), _count(value.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    total = _count(value.get("total_tokens"))
    return Usage(prompt, completion, prompt + completion if total is None else total)


def strip_think(text: str) -> tuple[str, bool]:
    """``text`` without ``<think>…</think>`` blocks (and whether any were cut).

    A reasoning model served without a reasoning parser puts its hidden reasoning in the content; an
    unclosed ``<think>`` (the answer was cut) drops everything after it, and a lone ``</think>`` (the chat
    template opened the block) drops everything before it.
    """
    if "<think>" not in text and "</think>" not in text:
        return text, False
    text = THINK_BLOCK.sub("", text)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        text = text.split("<think>", 1)[0]
    return text.strip(), True


def _content(message: Mapping[str, Any]) -> str | None:
    value = message.get("content")
    if isinstance(value, list):  # content parts, as some servers send
        value = "".join(str(p.get("text", "")) for p in value if isinstance(p, Mapping))
    return encodable(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class ChatResult:
    """One chat completion, normalised; ``cost_usd`` is None when the model has no price or no usage."""

    content: str | None
    refusal: str | None
    finish_reason: str | None
    model: str
    usage: Usage | None
    cost_usd: float | None
    think_stripped: bool = False


def parse_completion(
    body: object, *, requested_model: str, pricing: Pricing | None, remove_think: bool
) -> ChatResult:
    """A chat completion from a decoded JSON body (or its raw bytes/text); raises :class:`NotACompletion`."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        text = body
        try:
            body = json.loads(text)
        except ValueError:
            raise NotACompletion(f"the body is not JSON: {one_line(encodable(text))}") from None
    error = error_object(body)
    if error is not None or not isinstance(body, Mapping):
        shown = one_line(encodable(json.dumps(body, ensure_ascii=False)))
        raise NotACompletion(f"an error or no completion in place of an answer: {shown}", error)
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, Mapping):
        shown = one_line(encodable(json.dumps(body, ensure_ascii=False)))
        raise NotACompletion(f"a body with no choices: {shown}")
    found = choice.get("message")
    message: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    content = _content(message)
    stripped = False
    if content is not None and remove_think:
        content, stripped = strip_think(content)
    refusal = message.get("refusal")
    finish = choice.get("finish_reason")
    model = body.get("model")
    usage = normalise_usage(body.get("usage"))
    cost = None
    if usage is not None and pricing is not None:
        cost = pricing.cost(usage.prompt_tokens, usage.completion_tokens)
    return ChatResult(
        content=content,
        refusal=encodable(refusal) if isinstance(refusal, str) and refusal.strip() else None,
        finish_reason=encodable(str(finish)) if finish is not None else None,
        model=encodable(model) if isinstance(model, str) and model else requested_model,
        usage=usage,
        cost_usd=cost,
        think_stripped=stripped,
    )


@dataclass(frozen=True)
class Verdict:
    """What an answer is: ``ok`` reasoning, a ``recorded`` failure (paid, would repeat), or ``transient``."""

    kind: Literal["ok", "recorded", "transient"]
    reason: str | None = None
    detail: str | None = None


def judge(result: ChatResult) -> Verdict:
    """Apply the finish_reason table of docs/generation.md to one answer."""
    content = (result.content or "").strip()
    outcome = finish_outcome(result.finish_reason)
    shown = f"finish_reason={result.finish_reason}"
    if result.refusal:
        return Verdict("recorded", "refusal", result.refusal)
    if outcome == "truncated":
        return Verdict(
            "recorded", "truncated", f"{shown}: raise generator.max_tokens, then retry_failed=true"
        )
    if outcome == "filtered":
        return Verdict("recorded", "content_filter", f"{shown}: the provider's filter stopped the answer")
    billed_output = result.usage is not None and result.usage.completion_tokens > 0
    if outcome == "transient" or (not content and not billed_output):
        reason = f"finish_{result.finish_reason}" if outcome == "transient" else "no_content"
        return Verdict("transient", reason, shown)
    if not content:
        return Verdict("recorded", "empty", f"empty answer ({shown})")
    if outcome == "unknown":
        return Verdict(
            "recorded", "unknown_finish_reason", f"{shown} is not in the table of docs/generation.md"
        )
    return Verdict("ok")
