"""The LightningDataModule: KOTE splits → method-encoded, cached, length-grouped batches.

Lightning wiring, so it sits in ``training`` above the method contract it calls
(:class:`~emoreason.models.methods.base.Method`); the rows, batching and the encoding cache it assembles
stay in ``data``, which knows no method.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from emoreason.config import LoaderConfig
from emoreason.data.batching import EncodedDataset, LengthGroupedBatchSampler, pad_collate
from emoreason.data.encoding_cache import encode_cached
from emoreason.data.kote import KoteRow
from emoreason.data.sampling import KoteSplits
from emoreason.models.methods.base import Method


class KoteDataModule(L.LightningDataModule):
    """Serves train/val/test batches of one method's encoding of ``splits``."""

    def __init__(
        self,
        splits: KoteSplits,
        tokenizer: PreTrainedTokenizerBase,
        method: Method,
        loader: LoaderConfig,
        *,
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.splits = splits
        self.tokenizer = tokenizer
        self.method = method
        self.loader = loader
        self.seed = seed
        self.cache_dir = cache_dir
        self.datasets: dict[str, EncodedDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val", "test"):
            if split not in self.datasets:
                self.datasets[split] = self.encode_rows(getattr(self.splits, split), train=split == "train")

    def encode_rows(self, rows: list[KoteRow], *, train: bool = False) -> EncodedDataset:
        return encode_cached(
            self.method.encode,
            self.tokenizer,
            rows,
            self.loader.max_length,
            train=train,
            cache_dir=self.cache_dir,
            name=self.method.name,
            settings=repr(self.method),
        )

    def _replicas(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def dataloader(self, dataset: EncodedDataset, *, train: bool, shard: bool = True) -> DataLoader:
        """Batches of ``dataset``: shuffled length groups for training, length-sorted for evaluation.

        ``shard=False`` gives every row to this process (final scoring on rank 0 after a DDP fit).
        """
        num_replicas, rank = self._replicas() if shard else (1, 0)
        sampler = LengthGroupedBatchSampler(
            dataset.lengths,
            self.loader.batch_size if train else self.loader.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            pool_factor=self.loader.pool_factor if self.loader.length_grouping else 1,
            num_replicas=num_replicas,
            rank=rank,
        )
        collate = partial(
            pad_collate,
            pad_values=self.method.pad_values(self.tokenizer),
            padding_side=self.method.padding_side,
            pad_to_multiple_of=self.loader.pad_to_multiple_of,
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.loader.num_workers,
            persistent_workers=self.loader.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self.dataloader(self.datasets["train"], train=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader(self.datasets["val"], train=False)

    def test_dataloader(self) -> DataLoader:
        return self.dataloader(self.datasets["test"], train=False)
