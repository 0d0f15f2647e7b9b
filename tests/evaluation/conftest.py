"""A tiny trained checkpoint shared by the evaluation tests (one short real training per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import CONF_DIR, SMALL_RUN
from hydra import compose, initialize_config_dir

from emoreason.train import train


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, small_kote_dir, cache_dir) -> Path:
    """The best checkpoint of the embedded tiny ELECTRA after one epoch on 64 real KOTE rows (val_holdout)."""
    out = tmp_path_factory.mktemp("tiny_run")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                *SMALL_RUN,
                f"paths.kote_dir={small_kote_dir}",
                f"paths.cache_dir={cache_dir}",
                f"paths.output_dir={out}",
                "trainer.max_epochs=1",
                "data.source.max_train_rows=64",
            ],
        )
    report = train(cfg)
    return Path(report["best_checkpoint"])


def with_stored_config(checkpoint: Path, target: Path, **source: object) -> Path:
    """A copy of ``checkpoint`` whose stored ``data.source`` has ``source``'s keys replaced."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["emoreason"]["config"]["data"]["source"].update(source)
    torch.save(state, target)
    return target
