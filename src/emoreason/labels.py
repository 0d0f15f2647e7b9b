"""The 44 KOTE emotions: ids ↔ names, multi-hot targets, and the label strings generative methods emit.

The order is the dataset's own (KOTE README); ids in the TSV index into it, so it must never be re-sorted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the tensor helpers need torch; generate.py must not pay seconds to import it
    import torch

LABELS: tuple[str, ...] = (  # an id is a position here (0-based), as in the TSV
    "불평/불만",
    "환영/호의",
    "감동/감탄",
    "지긋지긋",
    "고마움",
    "슬픔",
    "화남/분노",
    "존경",
    "기대감",
    "우쭐댐/무시함",
    "안타까움/실망",
    "비장함",
    "의심/불신",
    "뿌듯함",
    "편안/쾌적",
    "신기함/관심",
    "아껴주는",
    "부끄러움",
    "공포/무서움",
    "절망",
    "한심함",
    "역겨움/징그러움",
    "짜증",
    "어이없음",
    "없음",
    "패배/자기혐오",
    "귀찮음",
    "힘듦/지침",
    "즐거움/신남",
    "깨달음",
    "죄책감",
    "증오/혐오",
    "흐뭇함(귀여움/예쁨)",
    "당황/난처",
    "경악",
    "부담/안_내킴",
    "서러움",
    "재미없음",
    "불쌍함/연민",
    "놀람",
    "행복",
    "불안/걱정",
    "기쁨",
    "안심/신뢰",
)
NUM_LABELS = len(LABELS)
LABEL_TO_ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
NONE_LABEL = "없음"
"""KOTE's own 'no emotion' label (id 24); generative methods also emit it for an empty prediction."""

LABEL_SEPARATOR = ", "
"""Between label names in generated targets: a comma never occurs inside a KOTE label name."""


def label_names(ids: Iterable[int]) -> list[str]:
    """Names of ``ids`` in canonical (dataset) order, duplicates removed."""
    return [LABELS[i] for i in sorted(set(ids))]


def multi_hot(ids: Iterable[int]) -> torch.Tensor:
    """A float 0/1 vector of length 44, the BCE target of one comment."""
    import torch

    target = torch.zeros(NUM_LABELS, dtype=torch.float32)
    target[list(ids)] = 1.0
    return target


def render_labels(ids: Iterable[int]) -> str:
    """The canonical label string a generative method learns to emit: names in dataset order, or 없음."""
    names = label_names(ids)
    return LABEL_SEPARATOR.join(names) if names else NONE_LABEL


def normalise_label_name(name: str) -> str:
    """Strip whitespace, quotes and list punctuation a model may wrap around a name; keep inner slashes."""
    return name.strip().strip("\"'`[].·-*").strip()


def parse_labels(text: str) -> tuple[list[int], bool]:
    """Parse a generated label string into sorted ids; the flag is False when any part was not a label.

    Exact match after normalisation: a near miss counts as unparseable rather than being guessed.
    """
    parts = [normalise_label_name(p) for p in text.replace("\n", ",").split(",")]
    parts = [p for p in parts if p]
    ids: set[int] = set()
    ok = bool(parts)
    for part in parts:
        label_id = LABEL_TO_ID.get(part)
        if label_id is None:
            ok = False
        else:
            ids.add(label_id)
    return sorted(ids), ok


def ids_from_multi_hot(row: Sequence[float] | torch.Tensor) -> list[int]:
    """Inverse of :func:`multi_hot` for a 0/1 row."""
    return [i for i, v in enumerate(row) if float(v) > 0.5]
