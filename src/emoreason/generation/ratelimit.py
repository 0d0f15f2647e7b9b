"""Client-side requests/min and tokens/min limits, and the shared pause after the server says slow down.

Providers enforce per-minute limits over short windows (OpenAI: "60,000 requests/minute may be enforced as
1,000 requests/second"), so each limit is a token bucket that holds one second's worth and refills
continuously. A call debits its cost at once, even into debt, and sleeps until the debt is repaid: callers are
served in arrival order and a call larger than the bucket still gets through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

BURST_SECONDS = 1.0


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

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` from now (extends, never shortens, a pause in force)."""
        self.paused_until = max(self.paused_until, self._clock() + seconds)

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
        while (pause := self.paused_until - self._clock()) > 0:
            await asyncio.sleep(pause)
        delay = self.reserve(tokens)
        if delay > 0:
            await asyncio.sleep(delay)
