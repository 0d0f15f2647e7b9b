"""Row sources that ``data=`` configs instantiate: where a run's train/val/test rows come from."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from emoreason.data.sampling import KoteSplits, SplitScheme, load_splits, seeded_shuffle


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

    def load(self) -> KoteSplits:
        splits = load_splits(
            self.root,
            self.split_scheme,
            holdout_size=self.holdout_size,
            seed=self.seed,
            download=self.download,
            verify_checksums=self.verify_checksums,
            sha256=self.sha256,
        )
        if self.max_train_rows is not None and self.max_train_rows < len(splits.train):
            kept = seeded_shuffle(splits.train, self.seed)[: self.max_train_rows]
            splits = replace(splits, train=sorted(kept, key=lambda r: r.id))
        return splits
