"""Calls to an OpenAI-compatible API, retried the way someone paying for them needs.

The SDK's own retries are off (``max_retries=0``) so that waiting, the shared pause and cost accounting
happen here, where they are visible:
- transient failures (429, 5xx, 408/409, timeouts, dropped connections) are retried with exponential backoff
  and jitter, waiting at least as long as ``Retry-After``/``retry-after-ms`` say; a 429 (or a 503 that names a
  wait) also pauses every other caller, once, through the shared :class:`RateLimiter`;
- failures no retry can fix (bad key, unknown model, ``insufficient_quota``, rejected parameters) raise
  :class:`FatalAPIError` at once and stop every caller from retrying;
- a 400 about one item's prompt (too long, policy) raises :class:`ItemRejectedError` for that item only.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import openai
from openai import AsyncOpenAI

from emoreason.generation.config import ChatGPTConfig
from emoreason.generation.cost import Budget, Pricing, estimate_prompt_tokens, worst_case_usd
from emoreason.generation.errors import FatalAPIError
from emoreason.generation.items import ChatResult
from emoreason.generation.prompt import Message
from emoreason.generation.ratelimit import RateLimiter

T = TypeVar("T")

ITEM_LEVEL_400_CODES = frozenset({"context_length_exceeded", "content_policy_violation", "invalid_prompt"})
"""400s caused by one item's prompt rather than by the settings: recorded for that item, the run goes on."""


@dataclass(frozen=True)
class Failure:
    """How one failed attempt is handled: retried (transient), recorded for the item, or fatal."""

    kind: Literal["transient", "item", "fatal"]
    reason: str
    message: str
    retry_after_s: float | None = None
    slow_down: bool = False


class RetriesExhaustedError(Exception):
    """Every attempt failed transiently; the item is not cached and a rerun tries it again."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.reason = failure.reason


class ItemRejectedError(Exception):
    """The server rejected this item's request for good (e.g. prompt too long); recorded with the reason."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.reason = failure.reason


class AbortedError(Exception):
    """Another call hit a fatal error: this one stops instead of retrying."""


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms`` (OpenAI), else ``retry-after`` (s or date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - time.time())


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half to all of ``min(max_s, base_s * 2**attempt)``."""
    ceiling = min(max_s, base_s * 2**attempt)
    return ceiling * rng.uniform(0.5, 1.0)


def classify(exc: BaseException, *, where: str, model: str, what: str | None = None) -> Failure | None:
    """The handling of an exception from the SDK; None for anything that is not an API failure (a bug).

    ``what`` names the object a control-plane call addresses (a batch, a file), for a clearer 404.
    """
    if isinstance(exc, openai.APITimeoutError):
        return Failure("transient", "timeout", f"no answer from {where} within the timeout")
    if isinstance(exc, openai.APIConnectionError):
        return Failure(
            "transient", "connection", f"connection to {where} failed or dropped ({exc.__cause__!r})"
        )
    if not isinstance(exc, openai.APIStatusError):
        return None
    status, code, message = exc.status_code, exc.code, exc.message
    if status == 401:
        return Failure(
            "fatal", "auth", f"{where} rejected OPENAI_API_KEY ({message}); export a valid key and rerun"
        )
    if status == 403:
        return Failure(
            "fatal", "permission", f"{where} denied access ({message}); check the key's project/model"
        )
    if status == 404 and what is not None:
        return Failure("fatal", "not_found", f"{what} not found at {where} ({message})")
    if status == 404:
        return Failure(
            "fatal",
            "unknown_model",
            f"model {model!r} not found at {where} ({message}); check generator.model, "
            "or generator.base_url if this is not the server you meant",
        )
    if status == 429 and (code == "insufficient_quota" or exc.type == "insufficient_quota"):
        return Failure(
            "fatal",
            "insufficient_quota",
            f"{where} reports insufficient_quota ({message}): the account is out of credit or over its spend "
            "limit. Add credit or raise the limit, then rerun: finished items are kept.",
        )
    retry_after = parse_retry_after(exc.response.headers)
    if status == 429:
        return Failure("transient", "rate_limited", message, retry_after, slow_down=True)
    if status >= 500 or status in (408, 409):
        return Failure(
            "transient", "server_error", f"{status}: {message}", retry_after, retry_after is not None
        )
    if status == 400 and (code in ITEM_LEVEL_400_CODES or exc.param == "messages"):
        return Failure("item", "bad_request", message)
    return Failure(
        "fatal",
        "rejected",
        f"{where} rejected the request ({status}: {message}); "
        "check generator.model, generator.temperature and generator.max_tokens",
    )


@dataclass
class CallStats:
    """Attempts made and how they went, for the summary."""

    requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)


class ChatClient:
    """One ``AsyncOpenAI`` client plus the retry policy, the rate limiter and the budget every call obeys."""

    def __init__(
        self,
        cfg: ChatGPTConfig,
        api_key: str,
        *,
        budget: Budget,
        pricing: Pricing | None,
        limiter: RateLimiter,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.openai = AsyncOpenAI(
            api_key=api_key, base_url=cfg.base_url, max_retries=0, timeout=cfg.timeout_s
        )
        self.where = str(self.openai.base_url).rstrip("/")
        self.budget = budget
        self.pricing = pricing
        self.limiter = limiter
        self.stats = CallStats()
        self.fatal: FatalAPIError | None = None
        self._api_key = api_key
        self._rng = rng or random.Random()

    async def close(self) -> None:
        await self.openai.close()

    async def complete(self, messages: list[Message]) -> ChatResult:
        """One chat completion, retried; raises the errors described in the module docstring.

        Each attempt reserves its worst case in the budget. An attempt that timed out or lost its connection
        may still have been billed, so it is charged at its worst case; a refused one (429, 5xx) at nothing.
        """
        worst = worst_case_usd(messages, self.pricing, self.cfg.max_tokens)
        limiter_tokens = estimate_prompt_tokens(messages, self.cfg.bytes_per_token) + self.cfg.max_tokens

        async def attempt() -> ChatResult:
            await self.budget.reserve(worst)
            try:
                await self.limiter.acquire(limiter_tokens)
                self.stats.requests += 1
                response = await self.openai.chat.completions.create(
                    model=self.cfg.model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=self.cfg.temperature,
                    max_tokens=self.cfg.max_tokens,
                )
            except BaseException as exc:
                maybe_billed = isinstance(exc, openai.APIConnectionError)
                await self.budget.settle(worst, worst if maybe_billed else 0.0)
                raise
            result = ChatResult.from_completion(response, self.pricing, self.cfg.model)
            await self.budget.settle(worst, worst if result.cost_usd is None else result.cost_usd)
            return result

        return await self._with_retries(attempt)

    async def call(self, make_call: Callable[[], Awaitable[T]], *, what: str) -> T:
        """A control-plane call (file upload, batch poll...), retried like a completion but free of budget."""
        return await self._with_retries(make_call, what=what)

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]], what: str | None = None) -> T:
        failure: Failure | None = None
        for number in range(self.cfg.max_retries + 1):
            if self.fatal is not None:
                raise AbortedError(str(self.fatal))
            try:
                return await attempt()
            except openai.OpenAIError as exc:
                failure = classify(exc, where=self.where, model=self.cfg.model, what=what)
                if failure is None:
                    raise
            if failure.kind == "fatal":
                self.fatal = self.fatal or FatalAPIError(self._redact(failure.message))
                raise self.fatal
            if failure.kind == "item":
                raise ItemRejectedError(failure)
            if number == self.cfg.max_retries:
                break
            delay = backoff_delay(number, self.cfg.backoff_base_s, self.cfg.backoff_max_s, self._rng)
            if failure.retry_after_s is not None:
                delay = failure.retry_after_s * self._rng.uniform(1.0, 1.1)
            if failure.slow_down:
                self.limiter.pause(delay)
            self.stats.retries[failure.reason] += 1
            await asyncio.sleep(delay)
        assert failure is not None
        raise RetriesExhaustedError(failure)

    def _redact(self, message: str) -> str:
        """Never let the key reach a log, even if a server echoes it back."""
        return message.replace(self._api_key, "***") if self._api_key else message
