"""A LoRA run's shareable form: ``<run>/adapter/``, in PEFT's format, safetensors only.

Files (none of them can run code when read):

- ``adapter_config.json`` and ``adapter_model.safetensors``: what ``PeftModel.save_pretrained`` writes
  (https://huggingface.co/docs/peft/developer_guides/checkpoint), so the Hub and
  ``PeftModel.from_pretrained(base, folder)`` take it as it is. Keys are
  ``base_model.model.<module>.lora_A.weight`` relative to the network the adapters sit in: the causal LM
  for generative methods, its base model (``AutoModel``) for a classifier, whose head replaces the LM head.
- ``head.safetensors``: every other trained weight (a classifier's head), under this package's module keys.
- ``emoreason.json``: the run's config and tokenizer (what a ``.ckpt`` carries as plain data) and where the
  adapted network sits in our module, so ``evaluate.py ckpt_path=<run>/adapter`` rebuilds the run.

:func:`read_adapter_folder` turns the folder back into a checkpoint's ``state_dict`` and ``emoreason``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from peft.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn
from transformers import PreTrainedModel

from emoreason.config import ConfigError
from emoreason.io import atomic_write, write_json_atomic
from emoreason.models.lora import LoraSettings

HEAD_NAME = "head.safetensors"
RUN_NAME = "emoreason.json"
PEFT_PREFIX = "base_model.model."
ADAPTER_NAME = "default"
"""The adapter name ``inject_adapter_in_model`` gives; PEFT's files leave it out of the keys."""

_NAMED = re.compile(rf"\.(lora_[A-Za-z_]+)\.{ADAPTER_NAME}(?=\.|$)")
_UNNAMED = re.compile(r"\.(lora_[A-Za-z_]+)(?=\.|$)")


def adapted_network(network: nn.Module) -> tuple[str, PreTrainedModel] | None:
    """``(prefix, pretrained)``: the outermost transformers model in ``network`` that holds LoRA layers."""
    for name, module in network.named_modules():
        if isinstance(module, PreTrainedModel):
            has_lora = any(".lora_" in f".{param}" for param, _ in module.named_parameters())
            return (f"{name}." if name else "", module) if has_lora else None
    return None


def is_adapter_folder(path: str | Path) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def _safetensors(tensors: Mapping[str, torch.Tensor]) -> bytes:
    return save({key: value.detach().cpu().contiguous() for key, value in tensors.items()}, {"format": "pt"})


def export_adapter(
    network: nn.Module, state_dict: Mapping[str, torch.Tensor], extra_state: Mapping[str, Any], folder: Path
) -> bool:
    """Write ``folder`` from a checkpoint's ``state_dict`` and ``emoreason`` entry in ``network``'s layout.

    ``network`` is the module's network (``EmotionModule.model``, the ``model.`` of checkpoint keys): only its
    module names are read, so under ZeRO-3 its partitioned parameters are never touched. Returns False
    (writing nothing) without LoRA.
    """
    found = adapted_network(network)
    if found is None:
        return False
    prefix, _ = found
    prefix = f"model.{prefix}"
    adapters, head = {}, {}
    for key, value in state_dict.items():
        if key.startswith(prefix) and _NAMED.search(key):
            adapters[PEFT_PREFIX + _NAMED.sub(r".\1", key.removeprefix(prefix))] = value
        else:
            head[key] = value
    config = OmegaConf.to_container(OmegaConf.create(dict(extra_state["config"])), resolve=True)
    assert isinstance(config, dict)
    settings = LoraSettings(**{k: v for k, v in config["lora"].items() if k != "_target_"})
    base = config["model"]
    settings.peft_config(base.get("name_or_path"), base.get("revision")).save_pretrained(str(folder))
    with atomic_write(folder / SAFETENSORS_WEIGHTS_NAME, binary=True) as handle:
        handle.write(_safetensors(adapters))
    with atomic_write(folder / HEAD_NAME, binary=True) as handle:
        handle.write(_safetensors(head))
    run = {"config": extra_state["config"], "tokenizer": extra_state["tokenizer"], "module_prefix": prefix}
    write_json_atomic(folder / RUN_NAME, run)
    return True


def read_adapter_folder(folder: str | Path) -> dict[str, Any]:
    """A checkpoint-like ``{"state_dict", "emoreason"}`` from an adapter folder; raises ``ConfigError``."""
    folder = Path(folder)
    try:
        run = json.loads((folder / RUN_NAME).read_text(encoding="utf-8"))
        adapters = load_file(folder / SAFETENSORS_WEIGHTS_NAME)
        head = load_file(folder / HEAD_NAME)
        prefix = run["module_prefix"]
        state = {"config": run["config"], "tokenizer": run["tokenizer"]}
    except (OSError, SafetensorError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"{folder}: not a readable adapter folder written by train.py ({type(exc).__name__}: {exc}); it "
            f"needs {CONFIG_NAME}, {SAFETENSORS_WEIGHTS_NAME}, {HEAD_NAME} and {RUN_NAME}"
        ) from None
    state_dict = {
        prefix + _UNNAMED.sub(rf".\1.{ADAPTER_NAME}", key.removeprefix(PEFT_PREFIX)): value
        for key, value in adapters.items()
    }
    return {"state_dict": {**state_dict, **head}, "emoreason": state}
