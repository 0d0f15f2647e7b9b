"""Control arms for the reasoning: what training on reasoning gains beyond longer targets or label names.

- ``none``: the reasoning as written.
- ``shuffled``: every training comment gets the reasoning of another comment: a seeded derangement, so the
  texts' distribution and lengths are the same and their content is wrong for the comment.
- ``template``: a reasoning made only of the gold label names in one fixed Korean sentence: the label
  information without any reasoning.

Only training rows are changed; no method reads reasoning at validation or test time.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, get_args

from emoreason.data.kote import KoteRow
from emoreason.data.sampling import seeded_shuffle
from emoreason.labels import LABEL_SEPARATOR, label_names

ReasoningControl = Literal["none", "shuffled", "template"]
CONTROLS: tuple[str, ...] = get_args(ReasoningControl)
TEMPLATE = "이 댓글에서 읽히는 감정은 다음과 같다: {labels}."
"""The template control's sentence ("The emotions read in this comment are: …"); ``{labels}`` is the gold
label names in KOTE order, joined as in the label line."""


def template_reasoning(row: KoteRow) -> str:
    return TEMPLATE.format(labels=LABEL_SEPARATOR.join(label_names(row.labels)))


def shuffled_reasoning(rows: list[KoteRow], seed: int) -> list[KoteRow]:
    """``rows`` (same order) where each takes the reasoning of the next row in a seeded cycle over all rows.

    One cycle through every row is a derangement: no row keeps its own reasoning, and the multiset of
    reasoning texts is unchanged. The cycle's order is :func:`seeded_shuffle`'s (by ID and ``seed``).
    Raises ValueError for fewer than two rows, which cannot be deranged.
    """
    if len(rows) < 2:
        raise ValueError(
            f"data.source.reasoning_control=shuffled needs 2 or more training rows to move reasoning "
            f"between, got {len(rows)}"
        )
    cycle = seeded_shuffle(rows, seed)
    given = {row.id: cycle[(i + 1) % len(cycle)].reasoning for i, row in enumerate(cycle)}
    return [replace(row, reasoning=given[row.id]) for row in rows]


def check_control(control: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` naming the config key unless ``control`` is one of :data:`CONTROLS`."""
    if control not in CONTROLS:
        raise error(f"data.source.reasoning_control must be one of {', '.join(CONTROLS)}, got {control!r}")


def apply_control(rows: list[KoteRow], control: str, seed: int) -> list[KoteRow]:
    """Training ``rows`` with their reasoning replaced as ``control`` says; ValueError naming the key."""
    check_control(control)
    if control == "shuffled":
        return shuffled_reasoning(rows, seed)
    if control == "template":
        return [replace(row, reasoning=template_reasoning(row)) for row in rows]
    return rows
