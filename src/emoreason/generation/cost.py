"""What calls cost: the price table, token estimates made before a call, and the budget cap.

Actual cost always comes from the ``usage`` the API returns. Before a call only estimates exist:
- :func:`estimate_prompt_tokens` (expected; ``bytes_per_token`` bytes of UTF-8 per token) drives the dry-run
  estimate and the tokens-per-minute limiter;
- :func:`max_prompt_tokens` is a bound: byte-level BPE tokenizers never emit more tokens than the text has
  bytes, so bytes plus the chat-format overhead is never below the real count. With ``max_tokens`` it bounds
  the worst case of a call, which :class:`Budget` reserves while the call is in flight.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from emoreason.generation.config import ChatGPTConfig, Mode
from emoreason.generation.prompt import Message

MESSAGE_OVERHEAD_TOKENS = 3
"""Tokens the chat format adds per message (role and separators), per OpenAI's token-counting cookbook."""
REPLY_OVERHEAD_TOKENS = 3
"""Tokens that prime the assistant's reply."""
PER_MILLION = 1_000_000


def _content_bytes(messages: Sequence[Message]) -> int:
    return sum(len(m["content"].encode("utf-8")) for m in messages)


def _overhead(messages: Sequence[Message]) -> int:
    return MESSAGE_OVERHEAD_TOKENS * len(messages) + REPLY_OVERHEAD_TOKENS


def estimate_prompt_tokens(messages: Sequence[Message], bytes_per_token: float) -> int:
    """Expected prompt tokens: a heuristic, used where no usage exists yet (dry run, rate limiting)."""
    return math.ceil(_content_bytes(messages) / bytes_per_token) + _overhead(messages)


def max_prompt_tokens(messages: Sequence[Message]) -> int:
    """An upper bound on prompt tokens (one token per byte at most), for worst-case budgeting."""
    return _content_bytes(messages) + _overhead(messages)


@dataclass(frozen=True)
class Pricing:
    """USD per million tokens for the configured model and mode (batch prices already discounted)."""

    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) / PER_MILLION

    @classmethod
    def for_model(cls, cfg: ChatGPTConfig, model: str, mode: Mode) -> Pricing | None:
        """The price of ``model`` in ``cfg.prices`` for ``mode`` (None: not listed, cost unknown)."""
        price = cfg.prices.get(model)
        if price is None:
            return None
        factor = cfg.batch_discount if mode is Mode.batch else 1.0
        return cls(price.input * factor, price.output * factor)


def worst_case_usd(messages: Sequence[Message], pricing: Pricing | None, max_tokens: int) -> float:
    """The most one call can cost: prompt at its token bound, answer at ``max_tokens`` (0 when unpriced)."""
    return 0.0 if pricing is None else pricing.cost(max_prompt_tokens(messages), max_tokens)


def affordable(worst_costs_usd: Sequence[float], limit_usd: float | None) -> int:
    """How many calls, in order, fit under ``limit_usd`` at their worst case (all when there is no cap)."""
    if limit_usd is None:
        return len(worst_costs_usd)
    total = 0.0
    for count, usd in enumerate(worst_costs_usd):
        total += usd
        if total > limit_usd:
            return count
    return len(worst_costs_usd)


class BudgetExhaustedError(Exception):
    """No further call fits under ``max_cost_usd``; calls already in flight still finish."""


class Budget:
    """Spending cap that counts calls in flight at their worst case, so the cap is never crossed.

    A call :meth:`reserve` s its worst-case cost before it starts and :meth:`settle` s it when it ends, with
    what it actually cost. When a reservation does not fit, it waits for calls in flight to settle (their
    actual cost is usually far below the worst case); only when nothing is in flight and it still does not
    fit is the budget exhausted, for good.
    """

    def __init__(self, limit_usd: float | None) -> None:
        self.limit_usd = limit_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.exhausted = False
        self._in_flight = 0
        self._changed = asyncio.Condition()

    def _fits(self, usd: float) -> bool:
        return self.limit_usd is None or self.spent_usd + self.reserved_usd + usd <= self.limit_usd

    async def reserve(self, usd: float) -> None:
        """Hold ``usd`` for one call; raise :class:`BudgetExhaustedError` when it can never fit."""
        async with self._changed:
            while not self.exhausted and not self._fits(usd):
                if self._in_flight == 0:
                    self.exhausted = True
                    break
                await self._changed.wait()
            if self.exhausted:
                raise BudgetExhaustedError
            self.reserved_usd += usd
            self._in_flight += 1

    async def settle(self, reserved_usd: float, charged_usd: float) -> None:
        """Replace a reservation by what the call was charged (its worst case when that is unknown)."""
        async with self._changed:
            self._in_flight -= 1
            # Exactly zero when idle, so float drift can never make an idle budget look busy.
            self.reserved_usd = self.reserved_usd - reserved_usd if self._in_flight else 0.0
            self.spent_usd += charged_usd
            self._changed.notify_all()
