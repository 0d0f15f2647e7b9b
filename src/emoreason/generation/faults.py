"""One classifier for every failure an OpenAI-compatible server can report, online or in a batch file.

Each failure gets one of three kinds, and the kind alone decides what happens to the item:

- ``fatal``: no retry can fix it (bad key, unknown model, no quota, a parameter the server rejects); the
  run stops at once with the server's message and what to change;
- ``item``: this one request would fail the same way again (its prompt is too long or was filtered); it is
  recorded for that item and the run goes on (``generator.retry_failed=true`` asks again);
- ``transient``: the server or the network failed (429, 5xx, timeouts, an unreadable body, a reply cut by
  an error); the call is retried, and an item still failing is left uncached for the next run.

Dialects recognised (from each provider's public API reference and reported behaviour): OpenAI's
``{"error": {"message", "type", "param", "code"}}``; Azure OpenAI's ``code=content_filter`` /
``ResponsibleAIPolicyViolation`` (with ``innererror``); vLLM's and Ollama's top-level or string ``error``
and their ``maximum context length`` messages; gateways (LiteLLM, OpenRouter, Cloudflare) that send a
status 200 whose body is only an ``error`` object with a numeric ``code``. ``finish_reason`` values are
mapped by :data:`FINISH_REASONS` (the table in docs/generation.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["transient", "item", "fatal"]

BODY_SHOWN_CHARS = 300
"""How much of an error body a message quotes: enough for a gateway's reason, not a whole HTML page."""

ITEM_CODES = frozenset(
    {
        "context_length_exceeded",
        "content_policy_violation",
        "invalid_prompt",
        "content_filter",
        "responsibleaipolicyviolation",
        "string_above_max_length",
    }
)
"""Error codes (lower-cased) caused by one item's prompt rather than by the settings."""
ITEM_MESSAGE = re.compile(
    r"maximum context length|context length|context window|too many tokens|prompt is too long|"
    r"content management policy|content filter|safety system|flagged",
    re.IGNORECASE,
)
"""The same, for servers that say it only in words (vLLM, Ollama, llama.cpp, gateways)."""
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))

FinishOutcome = Literal["ok", "truncated", "filtered", "transient", "unknown"]
FINISH_REASONS: dict[str, FinishOutcome] = {
    "stop": "ok",
    "eos": "ok",
    "eos_token": "ok",
    "end_turn": "ok",
    "stop_sequence": "ok",
    "length": "truncated",
    "max_tokens": "truncated",
    "max_output_tokens": "truncated",
    "model_length": "truncated",
    "content_filter": "filtered",
    "safety": "filtered",
    "recitation": "filtered",
    "blocklist": "filtered",
    "prohibited_content": "filtered",
    "refusal": "filtered",
    "error": "transient",
    "network_error": "transient",
    "abort": "transient",
    "aborted": "transient",
    "timeout": "transient",
    "cancelled": "transient",
}
"""``finish_reason`` (lower-cased) → outcome. Success needs non-empty content too; an answer with no content
that billed no output is transient whatever its reason; a value not listed is ``unknown``: recorded with its
value, never counted as success."""


def finish_outcome(finish_reason: str | None) -> FinishOutcome:
    """The outcome :data:`FINISH_REASONS` gives a ``finish_reason`` (``unknown`` for null or unlisted)."""
    return FINISH_REASONS.get((finish_reason or "").strip().lower(), "unknown")


@dataclass(frozen=True)
class Failure:
    """How one failed attempt is handled; ``message`` is already redacted and one line.

    ``billed_usd`` is what the attempt cost although its answer is unusable (a transient finish_reason with
    usage): 0 for errors, None when it was billed at an unknown price.
    """

    kind: Kind
    reason: str
    message: str
    retry_after_s: float | None = None
    slow_down: bool = False
    billed_usd: float | None = 0.0


class Redactor:
    """Removes the API key, and anything shaped like a key or a bearer token, from text bound for disk or log.

    Servers echo headers back in error messages (the fake one does, like careless gateways do), so every
    message that leaves the client goes through :meth:`__call__`, not only fatal ones.
    """

    PATTERNS = (
        re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
        re.compile(r"(?i)((?:api[-_ ]?key|authorization)[\"']?\s*[:=]\s*[\"']?)(?!bearer\s)[^\s\"',;]+"),
        re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    )

    def __init__(self, *secrets: str) -> None:
        self.secrets = tuple(s for s in secrets if s)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        for pattern in self.PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
        return text


def one_line(text: str, limit: int = BODY_SHOWN_CHARS) -> str:
    """Whitespace collapsed and cut to ``limit`` characters, so a body fits a log line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_object(body: object) -> Mapping[str, Any] | None:
    """The error a body carries, in any dialect: ``{"error": {...}}``, ``{"error": "text"}``, or vLLM's
    top-level ``{"object": "error", "message": ...}``; None when the body is not an error."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            return inner
        if isinstance(inner, str) and inner:
            return {"message": inner}
        if body.get("object") == "error" or ("message" in body and "code" in body and "choices" not in body):
            return body
    return None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def classify_error(
    status: int | None,
    error: Mapping[str, Any] | str | None,
    *,
    where: str,
    model: str,
    redact: Redactor,
    retry_after_s: float | None = None,
    what: str | None = None,
) -> Failure:
    """The handling of one error response: ``status`` is the HTTP status (or the batch line's), ``error``
    the error object (any dialect) or raw body text; ``what`` names what a control-plane call addresses."""
    if isinstance(error, Mapping):
        inner = error.get("innererror")
        codes = [error.get("code"), error.get("type")]
        if isinstance(inner, Mapping):
            codes.append(inner.get("code"))
        message = _text(error.get("message")) or _text(error)
        param = _text(error.get("param"))
        raw_code = error.get("code")
        if status in (None, 200) and isinstance(raw_code, int | str) and str(raw_code).isdigit():
            status = int(str(raw_code))  # a gateway's 200 that carries the upstream status as its code
    else:
        codes, message, param = [], _text(error), ""
    code_set = {str(c).lower() for c in codes if c not in (None, "")}
    text = redact(one_line(message)) or "(no message)"
    shown = f"{status}: {text}" if status else text

    def fatal(reason: str, advice: str) -> Failure:
        return Failure("fatal", reason, f"{advice} ({shown})")

    if code_set & QUOTA_CODES:
        return fatal(
            "insufficient_quota",
            f"{where} reports insufficient_quota: the account is out of credit or over its spend limit. "
            "Add credit or raise the limit, then rerun: finished items are kept",
        )
    if status == 401:
        return fatal("auth", f"{where} rejected OPENAI_API_KEY; export a valid key and rerun")
    if status == 403 and not code_set & ITEM_CODES:
        return fatal(
            "permission", f"{where} denied access; check the key's project and its access to the model"
        )
    if code_set & ITEM_CODES or (status in (400, 422, 413) and ITEM_MESSAGE.search(message)):
        reason = "content_filter" if code_set & {"content_filter", "responsibleaipolicyviolation"} else None
        return Failure("item", reason or "bad_request", shown)
    if status == 400 and param == "messages":
        return Failure("item", "bad_request", shown)
    if status == 404 and what is not None:
        return fatal("not_found", f"{what} not found at {where}")
    if status == 404 or "model_not_found" in code_set:
        return fatal(
            "unknown_model",
            f"model {model!r} not found at {where}; check generator.model, or generator.base_url if this "
            "is not the server you meant",
        )
    if status in TRANSIENT_STATUSES:
        reason = "rate_limited" if status == 429 else "server_error"
        slow_down = status == 429 or retry_after_s is not None
        return Failure("transient", reason, shown, retry_after_s, slow_down)
    if status is None or status < 400:
        return Failure("transient", "error_body", f"an error in place of an answer: {shown}")
    return Failure(
        "fatal",
        "rejected",
        f"{where} rejected the request ({shown}): fix the setting it names (generator.model; "
        "generator.temperature=null leaves temperature out; generator.token_limit_param="
        "max_completion_tokens or max_tokens), then rerun",
    )
