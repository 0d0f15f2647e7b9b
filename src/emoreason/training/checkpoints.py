"""Read any checkpoint train.py writes: a Lightning ``.ckpt`` file or a DeepSpeed ZeRO checkpoint folder.

Under DeepSpeed, Lightning saves a folder of sharded states. It is consolidated once, with Lightning's own
``convert_zero_checkpoint_to_fp32_state_dict``, into ``<folder>.fp32.ckpt`` beside it — a plain Lightning
checkpoint holding our config and tokenizer too — so evaluation never needs DeepSpeed or the GPUs it ran on.
LoRA runs under DeepSpeed save without frozen parameters, so their consolidated file holds only the adapters
and the head.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def checkpoint_file(path: str | Path) -> Path:
    """A single-file checkpoint for ``path``, consolidating a ZeRO folder on first use."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        consolidated = path.with_name(path.name + ".fp32.ckpt")
        if not consolidated.exists():
            from lightning.pytorch.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict

            # Written aside and renamed: an interrupted conversion never leaves a truncated file behind
            # that a later run would take for the consolidated checkpoint.
            partial = consolidated.with_name(f"{consolidated.name}.{os.getpid()}.partial")
            try:
                convert_zero_checkpoint_to_fp32_state_dict(path, partial)
                os.replace(partial, consolidated)
            finally:
                partial.unlink(missing_ok=True)
        return consolidated
    raise FileNotFoundError(f"checkpoint {path} does not exist (expected a .ckpt file or a DeepSpeed folder)")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents on CPU (our own files: config and tokenizer are plain Python objects)."""
    return torch.load(checkpoint_file(path), map_location="cpu", weights_only=False)
