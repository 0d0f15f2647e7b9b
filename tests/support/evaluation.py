"""Checkpoints whose stored config is changed, for the tests of evaluate."""

from __future__ import annotations

from pathlib import Path

import torch


def with_stored_config(checkpoint: Path, target: Path, **source: object) -> Path:
    """A copy of ``checkpoint`` whose stored ``data.source`` has ``source``'s keys replaced."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["emoreason"]["config"]["data"]["source"].update(source)
    torch.save(state, target)
    return target
