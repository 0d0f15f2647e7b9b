"""Calls to an OpenAI-compatible API, retried the way someone paying for them needs.

The SDK's own retries are off (``max_retries=0``) so that waiting, the shared pause and cost accounting
happen here, where they are visible. Every failure, online or control-plane, is classified once by
:func:`faults.classify_error` (or, for a body that is no usable answer, by :mod:`response`):
- transient failures are retried with exponential backoff and jitter (at most ``backoff_max_s``), waiting
  as long as ``Retry-After``/``retry-after-ms`` say but never longer than ``max_wait_s``: a longer request
  stops the run with "rerun later"; a 429 that shows a rate limit also pauses every caller once, through the
  shared :class:`RateLimiter`, and halves the calls in flight (:class:`CallWindow`); every wait of
  :data:`LONG_WAIT_S` or more is logged;
- a :class:`CircuitBreaker` stops the run when nearly every recent attempt failed the same way, naming the
  last error (status and body);
- fatal failures raise :class:`FatalAPIError` at once and stop every caller from retrying;
- item failures raise :class:`ItemRejectedError` for that item only.
Every message is redacted (:class:`faults.Redactor`) before it can reach a log, the cache or an exception.

Speed (docs/benchmarks.md): the SDK's aiohttp transport (``DefaultAioHttpClient``) instead of httpx's
connection pool, whose per-request scan cost ~30% of the event loop at 64 calls in flight, and the request
body sent as built (``AsyncOpenAI.post``) rather than through ``chat.completions.create``'s parameter
transform, which walks every message for nothing (~7%): the body is :func:`request_body`, already in the
API's shape.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import openai
from openai import AsyncOpenAI, DefaultAioHttpClient
from openai._types import RequestOptions

from emoreason.generation.config import ChatGPTConfig
from emoreason.generation.cost import Budget, Pricing, estimate_prompt_tokens, worst_case_usd
from emoreason.generation.errors import FatalAPIError, GenerationError, RerunLaterError
from emoreason.generation.faults import Failure, Redactor, classify_error
from emoreason.generation.prompt import Message
from emoreason.generation.ratelimit import SENT_AT, CallWindow, CircuitBreaker, RateLimiter
from emoreason.generation.response import ChatResult, NotACompletion, Verdict, judge, parse_completion

log = logging.getLogger(__name__)

T = TypeVar("T")

LONG_WAIT_S = 10.0
"""Waits at least this long are logged, so a run is never silent while it sleeps."""
BREAKER_WINDOW = 20
BREAKER_THRESHOLD = 0.9
WORKERS_PER_CALL = 4
"""Items worked on per call in flight: a call waiting out its retry holds no place in the window, so
another item can use it meanwhile. With two, a run where 10% of calls wait a 1-s Retry-After ran short of
items to send (41–59 of 64 in flight, docs/benchmarks.md); idle workers cost nothing but a coroutine."""
CHAT_OPTIONS: RequestOptions = {"security": {"bearer_auth": True}}
"""What ``chat.completions.create`` passes to ``post`` besides the body: the API key as a bearer token."""
REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5")
"""OpenAI model families that reject ``max_tokens`` and want ``max_completion_tokens``."""

ADVICE = {
    "connection": "nothing answers there: check that the server is running and generator.base_url",
    "timeout": "the server does not answer in time: raise generator.timeout_s or lower generator.concurrency",
    "rate_limited": "lower generator.concurrency or generator.requests_per_minute/tokens_per_minute",
    "server_error": "the server keeps failing: rerun later",
    "unreadable_response": "generator.base_url may point at a proxy or sign-in page rather than the API",
    "error_body": "the server or gateway answers with errors: rerun later, or check generator.base_url",
}


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
    """Another call stopped the run (fatal error, breaker, long wait): this one stops instead of retrying."""


class _FailedAnswer(Exception):
    """A 200 that is no usable answer (unreadable body, error object, transient finish_reason)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def token_limit_param(cfg: ChatGPTConfig) -> str:
    """``max_completion_tokens`` for OpenAI's reasoning models (they reject ``max_tokens``), else
    ``max_tokens``, which every OpenAI-compatible server accepts; ``generator.token_limit_param`` wins."""
    if cfg.token_limit_param != "auto":
        return cfg.token_limit_param
    name = cfg.model.rsplit("/", 1)[-1].lower()
    return "max_completion_tokens" if name.startswith(REASONING_MODEL_PREFIXES) else "max_tokens"


def request_body(cfg: ChatGPTConfig, messages: list[Message]) -> dict[str, Any]:
    """The Chat Completions request for one item, online and in a batch file alike.

    ``temperature`` is left out when null (reasoning models accept only their default).
    """
    body: dict[str, Any] = {"model": cfg.model, "messages": messages, token_limit_param(cfg): cfg.max_tokens}
    if cfg.temperature is not None:
        body["temperature"] = cfg.temperature
    return body


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


def timed_out(exc: BaseException) -> bool:
    """Whether an ``APITimeoutError`` is a timeout: the SDK's aiohttp transport reports every aiohttp
    connection error (refused, reset, disconnected) as ``httpx2.ConnectTimeout``; the aiohttp error tells."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError):
            return isinstance(cause, TimeoutError)
        cause = cause.__cause__
    return True


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half to all of ``min(max_s, base_s * 2**attempt)``."""
    ceiling = min(max_s, base_s * 2**attempt)
    return ceiling * rng.uniform(0.5, 1.0)


@dataclass
class CallStats:
    """Attempts made and how they went, for the summary."""

    requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    think_stripped: int = 0
    discarded_cost_usd: float = 0.0
    last_failure: Failure | None = None


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
        build_body: Callable[[list[Message]], dict[str, Any]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.build_body = build_body or (lambda messages: request_body(cfg, messages))
        """The request for one item's messages, online and in a batch file: a generator's own, or
        :func:`request_body`."""
        self.openai = AsyncOpenAI(
            api_key=api_key,
            base_url=cfg.base_url,
            max_retries=0,
            timeout=cfg.timeout_s,
            http_client=DefaultAioHttpClient(),
        )
        self.where = str(self.openai.base_url).rstrip("/")
        self.budget = budget
        self.pricing = pricing
        self.limiter = limiter
        self.window = CallWindow(cfg.concurrency, clock=limiter.now)
        self.workers = WORKERS_PER_CALL * cfg.concurrency
        """How many items to work on at once (``run_online``'s workers)."""
        self.stats = CallStats()
        self.stopped: GenerationError | None = None
        self.redact = Redactor(api_key)
        self.breaker = CircuitBreaker(BREAKER_WINDOW, BREAKER_THRESHOLD)
        self._rng = rng or random.Random()

    async def close(self) -> None:
        await self.openai.close()

    def classify(
        self,
        status: int | None,
        error: Mapping[str, Any] | str | None,
        *,
        retry_after_s: float | None = None,
        what: str | None = None,
    ) -> Failure:
        """:func:`faults.classify_error` with this client's server, model and redaction."""
        return classify_error(
            status,
            error,
            where=self.where,
            model=self.cfg.model,
            redact=self.redact,
            retry_after_s=retry_after_s,
            what=what,
        )

    def read_answer(self, body: object, pricing: Pricing | None) -> tuple[ChatResult, Verdict] | Failure:
        """A completion body (online reply or batch line) parsed and judged, or the failure it amounts to."""
        try:
            result = parse_completion(
                body, requested_model=self.cfg.model, pricing=pricing, remove_think=self.cfg.strip_think
            )
        except NotACompletion as exc:
            if exc.error is not None:
                return self.classify(200, exc.error)
            return Failure("transient", "unreadable_response", self.redact(str(exc)))
        verdict = judge(result)
        if verdict.kind == "transient":
            self.stats.discarded_cost_usd += result.cost_usd or 0.0
            message = self.redact(f"{verdict.detail}: {result.content!r}")
            return Failure("transient", str(verdict.reason), message, billed_usd=result.cost_usd)
        self.stats.think_stripped += result.think_stripped
        return result, verdict

    async def complete(self, messages: list[Message]) -> tuple[ChatResult, Verdict]:
        """One chat completion, retried; raises the errors described in the module docstring.

        Each attempt reserves its worst case in the budget. An attempt that timed out or lost its connection
        may still have been billed, so it is charged at its worst case; a refused one (429, 5xx) at nothing;
        an answer at its reported usage (its worst case when usage is missing), even when it is unusable.
        """
        worst = worst_case_usd(messages, self.pricing, self.cfg.max_tokens)
        limiter_tokens = estimate_prompt_tokens(messages, self.cfg.bytes_per_token) + self.cfg.max_tokens
        body = self.build_body(messages)

        retry = False

        async def attempt() -> tuple[ChatResult, Verdict]:
            nonlocal retry
            await self.window.enter(retry=retry)
            retry = True
            try:
                if self.stopped is not None:  # stopped while this call waited for its place
                    raise AbortedError(str(self.stopped))
                await self.budget.reserve(worst)
                try:
                    await self.limiter.acquire(limiter_tokens)
                    self.stats.requests += 1
                    raw = await self.openai.post(
                        "/chat/completions", cast_to=bytes, body=body, options=CHAT_OPTIONS
                    )
                except BaseException as exc:
                    maybe_billed = isinstance(exc, openai.APIConnectionError)
                    await self.budget.settle(worst, worst if maybe_billed else 0.0)
                    raise
            finally:
                self.window.leave()
            answer = self.read_answer(raw, self.pricing)
            if isinstance(answer, Failure):
                billed = answer.billed_usd
                await self.budget.settle(worst, worst if billed is None else billed)
                raise _FailedAnswer(answer)
            result = answer[0]
            charged = worst if result.cost_usd is None else result.cost_usd
            await self.budget.settle(worst, charged)
            return answer

        return await self._with_retries(attempt)

    async def call(self, make_call: Callable[[], Awaitable[T]], *, what: str) -> T:
        """A control-plane call (file upload, batch poll...), retried like a completion but free of budget."""
        return await self._with_retries(make_call, what=what)

    def _failure_of(self, exc: openai.OpenAIError, what: str | None) -> Failure | None:
        if isinstance(exc, openai.APITimeoutError) and timed_out(exc):
            return Failure("transient", "timeout", f"no answer from {self.where} within generator.timeout_s")
        if isinstance(exc, openai.APIConnectionError):
            cause = self.redact(repr(exc.__cause__))
            return Failure(
                "transient", "connection", f"connection to {self.where} failed or dropped ({cause})"
            )
        if not isinstance(exc, openai.APIStatusError):
            return None
        error = exc.body if isinstance(exc.body, Mapping | str) else exc.message
        retry_after = parse_retry_after(exc.response.headers)
        return self.classify(exc.status_code, error, retry_after_s=retry_after, what=what)

    def stop(self, error: GenerationError) -> GenerationError:
        """Stop every caller (the first reason wins) and return the reason."""
        self.stopped = self.stopped or error
        return self.stopped

    async def _with_retries(self, attempt: Callable[[], Awaitable[T]], what: str | None = None) -> T:
        failure: Failure | None = None
        for number in range(self.cfg.max_retries + 1):
            if self.stopped is not None:
                raise AbortedError(str(self.stopped))
            SENT_AT.set(self.limiter.now())
            try:
                result = await attempt()
            except _FailedAnswer as exc:
                failure = exc.failure
            except openai.OpenAIError as exc:
                failure = self._failure_of(exc, what)
                if failure is None:
                    raise
            else:
                self.breaker.record(None)
                self.window.answered()
                return result
            self.stats.last_failure = failure
            if not failure.slow_down:
                self.window.answered()
            if failure.kind == "fatal":
                raise self.stop(FatalAPIError(failure.message))
            if failure.kind == "item":
                self.breaker.record(None)  # the server works; this one request cannot
                raise ItemRejectedError(failure)
            if self.breaker.record(failure.reason):
                raise self.stop(self._tripped(failure))
            if number == self.cfg.max_retries:
                break
            await self._wait(number, failure)
        assert failure is not None
        raise RetriesExhaustedError(failure)

    def _tripped(self, failure: Failure) -> FatalAPIError:
        advice = ADVICE.get(failure.reason, "rerun later")
        return FatalAPIError(
            f"stopped: at least {BREAKER_THRESHOLD:.0%} of the last {BREAKER_WINDOW} calls to {self.where} "
            f"failed the same way ({failure.reason}); last error: {failure.message}; {advice}. "
            "Finished items are kept: rerun the same command to continue."
        )

    async def _wait(self, number: int, failure: Failure) -> None:
        """Back off before retry ``number + 1``, for at least the Retry-After asked; a 429 that shows a rate
        limit also pauses every other caller, once (:meth:`RateLimiter.pause`)."""
        asked = failure.retry_after_s
        if asked is not None and asked > self.cfg.max_wait_s:
            raise self.stop(
                RerunLaterError(
                    f"{self.where} asks to wait {asked / 60:.0f} min (Retry-After {asked:.0f} s, "
                    f"{failure.reason}: {failure.message}), more than generator.max_wait_s="
                    f"{self.cfg.max_wait_s:g}: rerun later (finished items are kept), or raise "
                    "generator.max_wait_s"
                )
            )
        delay = backoff_delay(number, self.cfg.backoff_base_s, self.cfg.backoff_max_s, self._rng)
        if asked is not None:
            delay = min(asked * self._rng.uniform(1.0, 1.1), self.cfg.max_wait_s)
        self.stats.retries[failure.reason] += 1
        if delay >= LONG_WAIT_S:
            log.warning("waiting %.0f s before retrying (%s: %s)", delay, failure.reason, failure.message)
        if failure.slow_down and self.window.slow_down(SENT_AT.get()):
            self.limiter.pause(delay, SENT_AT.get())
        await asyncio.sleep(delay)
