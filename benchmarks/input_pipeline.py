"""Training throughput and padding efficiency: our input pipeline vs the KOTE reference recipe.

Same model (tiny_electra, random init), same rows (val.tsv minus the 1,000-row holdout, as `python train.py`
uses here), same batch size (32), same optimizer (AdamW as training builds it: fused where the device has
the kernel); only the input pipeline differs:
- reference (KOTE's KOTE_pytorch_lightning.ipynb): tokenise in ``__getitem__`` on every epoch, pad every
  comment to 512 tokens, plain shuffled batches;
- ours: tokenise once (cached), length-grouped batches, dynamic padding to a multiple of 8.

    KOTE_DIR=../shared/data/kote .venv/bin/python benchmarks/input_pipeline.py --runs 3

Prints one JSON object: per-pipeline median samples/s over timed steps, padding efficiency (real tokens /
processed tokens over a whole epoch of batches) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterable

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from emoreason.config import LoaderConfig, TrainConfig, register_resolvers, validate
from emoreason.labels import multi_hot
from emoreason.models.methods.classifier import ClassifierMethod
from emoreason.training.datamodule import KoteDataModule
from emoreason.training.optimizers import adamw

CONF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")


class ReferenceDataset(Dataset):
    """The KOTE notebook's dataset: tokenise per item, pad to max_length=512."""

    def __init__(self, rows, tokenizer, max_length: int = 512) -> None:
        self.rows, self.tokenizer, self.max_length = rows, tokenizer, max_length

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        encoding = self.tokenizer(
            self.rows[index].text,
            max_length=self.max_length,
            padding="max_length",
            truncation=True,
            return_tensors="pt",
            return_token_type_ids=False,
        )
        return {
            "input_ids": encoding["input_ids"].flatten(),
            "attention_mask": encoding["attention_mask"].flatten(),
            "targets": multi_hot(self.rows[index].labels),
        }


def padding_efficiency(batches: Iterable[dict[str, torch.Tensor]]) -> float:
    real = processed = 0
    for batch in batches:
        real += int(batch["attention_mask"].sum())
        processed += batch["attention_mask"].numel()
    return real / processed


def samples_per_second(model, loader: DataLoader, warmup: int, steps: int) -> float:
    """Full training steps (forward, BCE, backward, AdamW as training builds it) with the loader's work."""
    method = ClassifierMethod()
    optimizer = adamw(model.parameters(), lr=1e-4, weight_decay=0.01)
    model.train()
    iterator = iter(loader)
    samples = 0
    for step in range(warmup + steps):
        if step == warmup:
            started, samples = time.perf_counter(), 0
        batch = next(iterator)
        loss, _ = method.loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        samples += batch["input_ids"].shape[0]
    return samples / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ours-steps", type=int, default=40)
    parser.add_argument("--reference-steps", type=int, default=6)
    args = parser.parse_args()

    register_resolvers()
    cache = tempfile.mkdtemp(prefix="bench-cache-")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.cache_dir={cache}", "paths.output_dir=/tmp/bench"])
    cfg = validate(cfg, TrainConfig)
    splits = instantiate(cfg.data.source).load()
    backbone = instantiate(cfg.model)
    tokenizer = backbone.load_tokenizer([r.text for r in splits.train], cache)
    method = ClassifierMethod()
    loader_cfg = OmegaConf.to_object(cfg.data.loader)
    assert isinstance(loader_cfg, LoaderConfig)
    datamodule = KoteDataModule(splits, tokenizer, method, loader_cfg, cache_dir=cache)
    datamodule.setup("fit")
    ours = datamodule.train_dataloader()
    reference = DataLoader(
        ReferenceDataset(splits.train, tokenizer), batch_size=loader_cfg.batch_size, shuffle=True
    )

    results: dict[str, list[float]] = {"ours": [], "reference": []}
    for run in range(args.runs):  # interleaved, so drift on a shared machine hits both alike
        torch.manual_seed(run)
        results["ours"].append(
            samples_per_second(method.build_model(backbone, tokenizer), ours, 3, args.ours_steps)
        )
        torch.manual_seed(run)
        results["reference"].append(
            samples_per_second(method.build_model(backbone, tokenizer), reference, 1, args.reference_steps)
        )
    ours_sps, ref_sps = (statistics.median(results[k]) for k in ("ours", "reference"))
    summary = {
        "rows": len(splits.train),
        "batch_size": loader_cfg.batch_size,
        "runs": args.runs,
        "torch_threads": torch.get_num_threads(),
        "ours": {
            "samples_per_s": round(ours_sps, 1),
            "all_runs": [round(x, 1) for x in results["ours"]],
            "padding_efficiency": round(padding_efficiency(ours), 3),
        },
        "reference_pad512": {
            "samples_per_s": round(ref_sps, 2),
            "all_runs": [round(x, 2) for x in results["reference"]],
            "padding_efficiency": round(padding_efficiency(reference), 3),
        },
        "speedup": round(ours_sps / ref_sps, 1),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
