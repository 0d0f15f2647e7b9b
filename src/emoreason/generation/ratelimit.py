"""Client-side requests/min and tokens/min limits, the calls-in-flight window, the shared pause after the
server says slow down, and the circuit breaker that ends a run whose server fails every call.

Providers enforce per-minute limits over short windows (OpenAI: "60,000 requests/minute may be enforced as
1,000 requests/second"), so each limit is a token bucket that holds one second's worth and refills
continuously. A call debits its cost at once, even into debt, and sleeps until the debt is repaid: callers are
served in arrival order and a call larger than the bucket still gets through.

How many calls are in flight adapts to the server (AIMD, as TCP's congestion window, RFC 5681): the window
grows by one call per window of answers and halves, at most once per round of calls in flight, when 429s
show a rate limit. A call waiting out its own backoff holds no place in the window, so one refused call
does not idle a slot for its whole Retry-After.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from contextvars import ContextVar

BURST_SECONDS = 1.0
LIMIT_WINDOW = 50
LIMIT_SHARE = 0.2
"""A 429 while at least this share of the last :data:`LIMIT_WINDOW` answers (or of all so far, when fewer)
are 429s shows a rate limit: a client over an account's limit is refused nearly every time, while a server
refusing 5% of calls at random reaches 20% of 50 with probability below 1e-3."""

SENT_AT: ContextVar[float] = ContextVar("SENT_AT", default=0.0)
"""When the current task's last request left (set by :meth:`RateLimiter.acquire`): decides whether a 429
belongs to a pause already in force."""


class TokenBucket:
    """A per-minute limit; :meth:`reserve` debits a cost and returns how long the caller must wait."""

    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.capacity = self.rate * BURST_SECONDS
        self.level = self.capacity
        self._clock = clock
        self._updated = clock()

    def reserve(self, cost: float) -> float:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now
        self.level -= cost
        return max(0.0, -self.level / self.rate)


class RateLimiter:
    """Both limits (either may be None: unlimited) plus a pause every caller honours."""

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._requests = None if requests_per_minute is None else TokenBucket(requests_per_minute, clock)
        self._tokens = None if tokens_per_minute is None else TokenBucket(tokens_per_minute, clock)
        self.paused_until = 0.0
        self.pause_started = float("-inf")
        self.pauses = 0

    def now(self) -> float:
        return self._clock()

    def pause(self, seconds: float, sent_at: float) -> None:
        """Hold every caller back for ``seconds`` from now, for a slow-down answer to a request sent at
        ``sent_at``.

        Pauses coalesce: a request that was already in flight when a pause began was answered under that
        pause's cause, so its 429 waits out the pause in force instead of starting another one after it.
        Without this, N calls in flight turn one server hiccup into N back-to-back pauses.
        """
        if sent_at <= self.pause_started:
            return
        self.pause_started = self._clock()
        self.paused_until = max(self.paused_until, self.pause_started + seconds)
        self.pauses += 1

    async def wait_pause(self) -> None:
        """Return once no pause is in force."""
        while (pause := self.paused_until - self._clock()) > 0:
            await asyncio.sleep(pause)

    def reserve(self, tokens: int) -> float:
        """Debit one request of ``tokens`` and return the wait the limits impose on it."""
        waits = [0.0]
        if self._requests is not None:
            waits.append(self._requests.reserve(1))
        if self._tokens is not None:
            waits.append(self._tokens.reserve(tokens))
        return max(waits)

    async def acquire(self, tokens: int) -> None:
        """Wait out any pause, then the limits, before one request of ``tokens`` (prompt + max output)."""
        await self.wait_pause()
        delay = self.reserve(tokens)
        if delay > 0:
            await asyncio.sleep(delay)
        SENT_AT.set(self._clock())


class CallWindow:
    """How many calls may be in flight: at most ``limit``, halved while 429s show a rate limit (AIMD).

    :meth:`slow_down` decides what a 429 means. While at least :data:`LIMIT_SHARE` of recent answers are
    429s (a lone 429 at the start of a run counts), it pauses every caller: the caller then calls
    :meth:`RateLimiter.pause`, which coalesces the pauses of calls in flight into one. Once that share holds
    over a full :data:`LIMIT_WINDOW`, a sustained limit, the window also halves, at most once per round:
    429s to calls already in flight at a cut answer the rate that caused it. Other 429s, a server's
    occasional refusals, delay only their own retry, which waits its Retry-After outside the window. Each
    other answer grows the window by ``1 / window`` (one call per round) up to ``limit``.
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.size = float(limit)
        self.in_flight = 0
        self.cuts = 0
        self._clock = clock
        self._last_cut = float("-inf")
        self._recent: deque[bool] = deque(maxlen=LIMIT_WINDOW)
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def enter(self, *, retry: bool = False) -> None:
        """Wait for a place in the window (first come, first served; a retry, which has waited its backoff
        already, goes first), then take it."""
        waiter = asyncio.get_running_loop().create_future()
        if retry:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        self._wake()
        try:
            await waiter
        except BaseException:
            if not waiter.cancelled():
                self.leave()  # given a place, then cancelled: the place goes to the next caller
            raise

    def leave(self) -> None:
        """Give back the place of a call that has its answer (or failed to get one)."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.size):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def answered(self) -> None:
        """A call got a usable answer or a failure that says nothing about the rate."""
        self._recent.append(False)
        self.size = min(float(self.limit), self.size + 1.0 / self.size)
        self._wake()

    def slow_down(self, sent_at: float) -> bool:
        """Note a 429 to a call sent at ``sent_at``; True when it shows a rate limit all callers must obey."""
        self._recent.append(True)
        refused = sum(self._recent)
        if refused >= LIMIT_SHARE * LIMIT_WINDOW and sent_at > self._last_cut:
            self.size = max(1.0, self.size / 2)
            self._last_cut = self._clock()
            self.cuts += 1
        return refused >= LIMIT_SHARE * len(self._recent)


class CircuitBreaker:
    """Stops a run when (nearly) every recent attempt failed the same way, instead of retrying for hours.

    It looks at the last ``window`` attempts of the whole run (every worker, control-plane calls too) and
    trips when at least ``threshold`` of them failed with one and the same transient reason. With the
    defaults (20 attempts, 0.9) a server failing 10% of calls at random trips it with probability below
    1e-15 per window; a server that is down, or answers every call with a 502 or a sign-in page, trips it
    after 20 attempts (seconds, with the default backoff).
    """

    def __init__(self, window: int, threshold: float) -> None:
        self.window = window
        self.threshold = threshold
        self._recent: deque[str | None] = deque(maxlen=window)

    def record(self, reason: str | None) -> bool:
        """Note one attempt (``None``: it got an answer); True when the breaker trips on it."""
        self._recent.append(reason)
        if len(self._recent) < self.window:
            return False
        counts = Counter(r for r in self._recent if r is not None)
        return bool(counts) and counts.most_common(1)[0][1] >= self.threshold * self.window
