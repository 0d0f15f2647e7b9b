"""Row sources that ``data=`` configs instantiate: where a run's train/val/test rows come from."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from emoreason.config import ConfigError
from emoreason.data.controls import ReasoningControl, apply_control, check_control
from emoreason.data.kote import KoteRow
from emoreason.data.reasoning import ReasoningRecord, read_reasoning_jsonl
from emoreason.data.sampling import KoteSplits, SplitScheme, check_split_scheme, load_splits, seeded_shuffle

log = logging.getLogger(__name__)

MissingReasoning = Literal["error", "drop"]


class ReasoningJoinError(ValueError):
    """KOTE rows and a reasoning dataset that cannot be joined as configured; the message says what to do."""


@dataclass
class KoteSource:
    """KOTE rows split by ``split_scheme`` (see :mod:`emoreason.data.sampling`).

    ``max_train_rows`` keeps a seeded subset of the training rows (quick experiments, tests); ``None``
    keeps all. Validation and test rows are never subsampled, so reported numbers stay comparable.
    """

    root: str
    split_scheme: SplitScheme = "auto"
    holdout_size: int = 1000
    seed: int = 0
    max_train_rows: int | None = None
    download: bool = True
    verify_checksums: bool = True
    sha256: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_split_scheme(self.split_scheme)
        if self.holdout_size < 1:
            raise ConfigError(f"data.source.holdout_size must be at least 1, got {self.holdout_size}")
        if self.max_train_rows is not None and self.max_train_rows < 1:
            raise ConfigError(
                f"data.source.max_train_rows must be at least 1 (null keeps all), got {self.max_train_rows}"
            )

    def load(self) -> KoteSplits:
        return self._subsample(self._load_all())

    def _load_all(self) -> KoteSplits:
        return load_splits(
            self.root,
            self.split_scheme,
            holdout_size=self.holdout_size,
            seed=self.seed,
            download=self.download,
            verify_checksums=self.verify_checksums,
            sha256=self.sha256,
        )

    def _subsample(self, splits: KoteSplits) -> KoteSplits:
        if self.max_train_rows is not None and self.max_train_rows < len(splits.train):
            kept = seeded_shuffle(splits.train, self.seed)[: self.max_train_rows]
            splits = replace(splits, train=sorted(kept, key=lambda r: r.id))
        return splits


@dataclass(kw_only=True)
class ReasoningSource(KoteSource):
    """KOTE rows with the reasoning of a reasoning dataset (``reasoning_path``) joined in by ID.

    The splits are exactly :class:`KoteSource`'s, so numbers stay comparable with ``data=kote_plain``;
    the reasoning dataset only annotates rows. Training rows must all have reasoning: a missing one is an
    error with the count, unless ``missing_reasoning="drop"`` explicitly trains on the annotated rows only
    (logged, and recorded in metrics.json's ``data_sources``). ``max_train_rows`` subsamples after that.
    Validation and test rows are kept whole, reasoning or not: no method reads reasoning at inference.
    A record whose text or labels differ from its KOTE row is an error naming file, line and ID.
    ``reasoning_control`` (:mod:`emoreason.data.controls`) then replaces the training rows' reasoning by
    another comment's (``shuffled``) or by the gold label names in a sentence (``template``).
    """

    reasoning_path: str
    missing_reasoning: MissingReasoning = "error"
    reasoning_control: ReasoningControl = "none"

    def load(self) -> KoteSplits:
        if self.missing_reasoning not in ("error", "drop"):
            raise ReasoningJoinError(
                f"data.source.missing_reasoning must be 'error' or 'drop', got {self.missing_reasoning!r}"
            )
        check_control(self.reasoning_control, ReasoningJoinError)  # before reading anything
        splits = self._load_all()
        by_id = self._read_records()
        joined = {
            name: _annotate(getattr(splits, name), by_id, self.reasoning_path)
            for name in ("train", "val", "test")
        }
        missing = [r for r in joined["train"] if r.reasoning is None]
        train = [r for r in joined["train"] if r.reasoning is not None]
        if missing and self.missing_reasoning == "error":
            raise ReasoningJoinError(
                f"{len(missing)} of {len(joined['train'])} training rows have no reasoning in "
                f"{self.reasoning_path} (IDs {', '.join(r.id for r in missing[:5])}, ...). Generate "
                "reasoning for them (generate.py), or set data.source.missing_reasoning=drop to train on the "
                f"{len(train)} rows that have it."
            )
        if not train:
            raise ReasoningJoinError(
                f"no training row has reasoning in {self.reasoning_path}: do its IDs belong to the KOTE "
                f"files under {self.root} (split_scheme={splits.scheme})?"
            )
        summary = ", ".join(
            f"{name} {sum(r.reasoning is not None for r in rows)}/{len(rows)}"
            for name, rows in joined.items()
        )
        if missing:
            log.warning("dropped %d training rows without reasoning (%s)", len(missing), self.reasoning_path)
            summary += f"; {len(missing)} training rows without reasoning dropped"
        sources = {
            **splits.sources,
            "reasoning": self.reasoning_path,
            "reasoning_rows": summary,
            "reasoning_control": self.reasoning_control,
        }
        joined_splits = replace(splits, train=train, val=joined["val"], test=joined["test"], sources=sources)
        kept = self._subsample(joined_splits)
        return replace(kept, train=apply_control(kept.train, self.reasoning_control, self.seed))

    def _read_records(self) -> dict[str, tuple[int, ReasoningRecord]]:
        """Records by ID with their line numbers (the reader rejects blank lines, so record i is line i+1)."""
        if not Path(self.reasoning_path).exists():
            raise ReasoningJoinError(
                f"reasoning dataset {self.reasoning_path} does not exist: set KOTE_REASONING_PATH (or "
                "paths.reasoning_path) to a reasoning.jsonl, or make one with generate.py"
            )
        records = read_reasoning_jsonl(self.reasoning_path)
        return {record.id: (lineno, record) for lineno, record in enumerate(records, start=1)}


def _annotate(rows: list[KoteRow], by_id: dict[str, tuple[int, ReasoningRecord]], path: str) -> list[KoteRow]:
    """``rows`` with reasoning filled in where the dataset has their ID, after checking text and labels."""
    annotated = []
    for row in rows:
        found = by_id.get(row.id)
        if found is None:
            annotated.append(row)
            continue
        lineno, record = found
        if record.text != row.text or record.label_ids != row.labels:
            what = "text" if record.text != row.text else f"labels {list(record.labels)}"
            raise ReasoningJoinError(
                f"{path}:{lineno}: id {row.id} has {what} different from its KOTE row; the reasoning was "
                "made for another version of the comment: regenerate it or remove the record"
            )
        annotated.append(replace(row, reasoning=record.reasoning))
    return annotated
