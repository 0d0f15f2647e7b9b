"""What a method says about one batch: shared by the methods (models) and the module that logs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch


@dataclass
class MethodScores:
    """What a method says about one batch: label scores, per-row diagnostics, and any text it wrote."""

    scores: torch.Tensor
    """(batch, 44) label scores in [0, 1]."""
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)
    """Per-row figures (one value per row), e.g. ``unparseable_rate``; {} for methods without any."""
    decode: Callable[[], list[str]] | None = None
    """Decodes the text a generative method wrote for each row (reasoning and label line); None otherwise.

    Run only when :attr:`generated` is read (evaluation writes it out), so validation never decodes.
    """

    @cached_property
    def generated(self) -> list[str] | None:
        """The text written for each row, decoded on first read; None for methods that write none."""
        return None if self.decode is None else self.decode()
