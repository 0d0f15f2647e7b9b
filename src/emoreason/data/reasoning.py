"""The reasoning dataset: the one contract between reasoning generation (``generate.py``) and training.

Format: UTF-8 JSON Lines, one comment per line::

    {"id": "45947", "text": "...", "labels": ["환영/호의", "놀람"], "reasoning": "...",
     "model": "gpt-4o-mini-2024-07-18", "prompt_version": "kote-reasoning-v1",
     "usage": {"prompt_tokens": 310, "completion_tokens": 190, "total_tokens": 500}, "finish_reason": "stop"}

``id``, ``text`` and ``labels`` (KOTE label *names*) repeat the KOTE row, so training joins records with KOTE
rows by ``id`` and can check that text and labels agree. ``model`` (the name the API returned),
``prompt_version``, ``usage`` and ``finish_reason`` describe how the reasoning was made; they may be absent
or null, as in the shared ``kote_reasoning`` sample, whose records carry only the first four keys. Other keys
are ignored, so later writers can add fields without breaking readers.

Datasets are written atomically and read strictly: any defect is an error naming file and line. Only the
generation cache, which is appended to while calls return, may end in a torn line after a crash; it reads
lines through :func:`emoreason.io.iter_jsonl` with ``tolerate_torn_tail=True``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emoreason.data.kote import unique_by_id
from emoreason.io import atomic_write, iter_jsonl
from emoreason.labels import LABEL_TO_ID

REQUIRED_KEYS = ("id", "text", "labels", "reasoning")
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


class ReasoningFormatError(ValueError):
    """A reasoning file that does not follow the format; the message names file and line."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one API call consumed, as the API reported them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def to_json(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in USAGE_KEYS}


@dataclass(frozen=True, slots=True)
class ReasoningRecord:
    """One comment with its gold labels (names, in KOTE order) and the reasoning that explains them."""

    id: str
    text: str
    labels: tuple[str, ...]
    reasoning: str
    model: str | None = None
    prompt_version: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None

    @property
    def label_ids(self) -> tuple[int, ...]:
        """KOTE ids of :attr:`labels`, comparable with ``KoteRow.labels``."""
        return tuple(LABEL_TO_ID[name] for name in self.labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "labels": list(self.labels),
            "reasoning": self.reasoning,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "usage": None if self.usage is None else self.usage.to_json(),
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_json(cls, obj: object, where: str, *, require_reasoning: bool = True) -> ReasoningRecord:
        """Validate one decoded line; ``where`` (``file:line``) prefixes every error.

        ``require_reasoning=False`` admits an empty reasoning, which only the cache's failure entries need.
        """
        if not isinstance(obj, Mapping):
            raise ReasoningFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        missing = [key for key in REQUIRED_KEYS if key not in obj]
        if missing:
            raise ReasoningFormatError(
                f"{where}: missing key(s) {missing}; every record needs {REQUIRED_KEYS}"
            )
        for key in ("id", "text", "reasoning"):
            if not isinstance(obj[key], str):
                raise ReasoningFormatError(f"{where}: {key!r} must be a string, got {obj[key]!r}")
        if not obj["id"].strip() or not obj["text"].strip():
            raise ReasoningFormatError(f"{where}: empty 'id' or 'text'")
        if require_reasoning and not obj["reasoning"].strip():
            raise ReasoningFormatError(f"{where}: empty 'reasoning' for id {obj['id']}")
        for key in ("model", "prompt_version", "finish_reason"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise ReasoningFormatError(f"{where}: {key!r} must be a string or null, got {obj[key]!r}")
        return cls(
            id=obj["id"],
            text=obj["text"],
            labels=_parse_labels(obj["labels"], where),
            reasoning=obj["reasoning"],
            model=obj.get("model"),
            prompt_version=obj.get("prompt_version"),
            usage=_parse_usage(obj.get("usage"), where),
            finish_reason=obj.get("finish_reason"),
        )


def _parse_labels(value: object, where: str) -> tuple[str, ...]:
    """Label names, checked against KOTE's 44 and returned in dataset order."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ReasoningFormatError(
            f"{where}: 'labels' must be a non-empty list of label names, got {value!r}"
        )
    unknown = [name for name in value if name not in LABEL_TO_ID]
    if unknown:
        raise ReasoningFormatError(
            f"{where}: unknown label name(s) {unknown}; names must be KOTE's (emoreason.labels.LABELS)"
        )
    if len(set(value)) != len(value):
        raise ReasoningFormatError(f"{where}: repeated label name in {value}")
    return tuple(sorted(value, key=LABEL_TO_ID.__getitem__))


def _parse_usage(value: object, where: str) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(value.get(k), int) and value[k] >= 0 for k in USAGE_KEYS
    ):
        raise ReasoningFormatError(
            f"{where}: 'usage' must hold non-negative integers {USAGE_KEYS}, got {value!r}"
        )
    return Usage(**{k: value[k] for k in USAGE_KEYS})


def read_reasoning_jsonl(path: str | Path) -> list[ReasoningRecord]:
    """All records of a reasoning dataset, in file order; a duplicate ``id`` is an error naming both lines."""
    numbered = (
        (lineno, ReasoningRecord.from_json(obj, f"{path}:{lineno}"))
        for lineno, obj in iter_jsonl(path, error=ReasoningFormatError)
    )
    return unique_by_id(numbered, path, ReasoningFormatError, noun="id")


def write_reasoning_jsonl(path: str | Path, records: Iterable[ReasoningRecord]) -> Path:
    """Write ``records`` to ``path`` atomically: readers see the old file or the complete new one, never half.

    The lines go to a temporary file beside ``path``, are fsynced, and replace ``path`` in one rename. Each
    record is first read back through :meth:`ReasoningRecord.from_json`, so nothing is written that
    :func:`read_reasoning_jsonl` would refuse (e.g. label ids where names belong): raises
    :class:`ReasoningFormatError` naming the record, and ``path`` is left as it was.
    """
    path = Path(path)
    rows = list(records)
    for index, record in enumerate(rows):
        ReasoningRecord.from_json(record.to_json(), f"{path}: record {index} (id {record.id})")
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate ids in records for {path}")
    with atomic_write(path) as handle:
        for record in rows:
            handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
    return path
