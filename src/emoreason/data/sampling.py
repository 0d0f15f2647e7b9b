"""Which KOTE rows train, tune and test a model, and the paper's seed sample for reasoning generation.

Two split schemes:
- ``official``: KOTE's own train/val/test files (train.tsv is downloaded when missing).
- ``val_holdout``: for copies that hold only val.tsv and test.tsv (as the shared KOTE copy does): val.tsv is
  split, seeded, into a training part and a ``holdout_size`` validation part; test.tsv stays the test set.
``auto`` takes ``official`` when train.tsv is present or downloadable and falls back to ``val_holdout``
otherwise, saying so in the log and in ``metrics.json`` (``split_scheme``), so no number is mislabelled.
"""

from __future__ import annotations

import logging
import random
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

from emoreason.config import ConfigError
from emoreason.data.kote import KoteDownloadError, KoteRow, locate_split, read_kote_tsv

log = logging.getLogger(__name__)

SplitScheme = Literal["auto", "official", "val_holdout"]


@dataclass(frozen=True)
class KoteSplits:
    """Rows per stage plus the scheme that produced them (recorded with every metric)."""

    train: list[KoteRow]
    val: list[KoteRow]
    test: list[KoteRow]
    scheme: str
    sources: dict[str, str] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def seeded_shuffle(rows: Sequence[KoteRow], seed: int) -> list[KoteRow]:
    """Rows in an order that depends only on their IDs and ``seed``, not on file order."""
    ordered = sorted(rows, key=lambda r: r.id)
    random.Random(seed).shuffle(ordered)
    return ordered


def seed_sample(pool: Sequence[KoteRow], n: int, seed: int) -> list[KoteRow]:
    """The paper's seed sample: ``n`` rows of the labelled non-test pool, seeded, in ID order.

    ``generate.py`` draws the comments it writes reasoning for with this (``n``, ``seed``). Training never
    draws again: ``data=kote_reasoning`` joins the dataset's records to KOTE rows by ID
    (:class:`~emoreason.data.sources.ReasoningSource`), so it trains on the sampled rows of its train split.
    """
    if n <= 0:
        raise ValueError(f"seed sample size must be positive, got {n}")
    if n > len(pool):
        raise ValueError(f"seed sample size {n} exceeds the pool of {len(pool)} labelled non-test rows")
    return sorted(seeded_shuffle(pool, seed)[:n], key=lambda r: r.id)


def check_split_scheme(scheme: str) -> None:
    """Raise :class:`ConfigError` naming ``data.source.split_scheme`` unless ``scheme`` is a SplitScheme."""
    choices = typing.get_args(SplitScheme)
    if scheme not in choices:
        raise ConfigError(f"data.source.split_scheme must be one of {', '.join(choices)}, got {scheme!r}")


def load_splits(
    root: str | Path,
    scheme: SplitScheme = "auto",
    *,
    holdout_size: int = 1000,
    seed: int = 0,
    download: bool = True,
    verify_checksums: bool = True,
    sha256: dict[str, str | None] | None = None,
) -> KoteSplits:
    """Read the KOTE files under ``root`` and split them by ``scheme`` (see the module docstring)."""
    check_split_scheme(scheme)
    locate = partial(locate_split, root, download=download, verify_checksums=verify_checksums, sha256=sha256)
    val_path = locate("val")
    test_path = locate("test")
    if scheme != "val_holdout":
        try:
            train_path = locate("train")
        except KoteDownloadError:
            if scheme == "official":
                raise
            log.warning(
                "train.tsv is not under %s and could not be downloaded: training from val.tsv "
                "(split_scheme=val_holdout, %d held out for validation). Numbers are not comparable "
                "with models trained on KOTE's 40k train split.",
                root,
                holdout_size,
            )
        else:
            return KoteSplits(
                train=read_kote_tsv(train_path),
                val=read_kote_tsv(val_path),
                test=read_kote_tsv(test_path),
                scheme="official",
                sources={"train": str(train_path), "val": str(val_path), "test": str(test_path)},
            )
    val_rows = read_kote_tsv(val_path)
    if not 0 < holdout_size < len(val_rows):
        raise ConfigError(
            f"data.source.holdout_size must be in 1..{len(val_rows) - 1} (val.tsv has {len(val_rows)} rows), "
            f"got {holdout_size}"
        )
    shuffled = seeded_shuffle(val_rows, seed)
    return KoteSplits(
        train=sorted(shuffled[holdout_size:], key=lambda r: r.id),
        val=sorted(shuffled[:holdout_size], key=lambda r: r.id),
        test=read_kote_tsv(test_path),
        scheme="val_holdout",
        sources={"train": str(val_path), "val": str(val_path), "test": str(test_path)},
    )
