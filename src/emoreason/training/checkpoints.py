"""Read any checkpoint train.py writes without running code from it.

A checkpoint is a pickle, and unpickling can call any function the file names, so a shared run folder
would be a way to run commands on whoever evaluates it. Ours hold tensors and plain data only (the config as
plain dicts, the tokenizer as its JSON), so :func:`load_checkpoint` reads them with
``torch.load(weights_only=True)``, PyTorch's restricted unpickler (https://docs.pytorch.org/docs/stable/notes/serialization.html#weights-only):
Lightning's own entries (loops, callback states, optimizer and scheduler states) pass it as they are. A file
that does not pass is refused, naming ``trust_checkpoint=true`` for a file the user made or trusts; with it
the file is unpickled in full, with a warning. :func:`resave_trusted` turns such a file into a safe one.

Under DeepSpeed, Lightning saves a folder of sharded states that only unpickling can read (DeepSpeed's and
Lightning's converters do). train.py consolidates the folder it wrote at the end of training
(:func:`consolidate_zero_checkpoint`) into ``<folder>.fp32.ckpt`` beside it, holding the weights, the step and
our config and tokenizer as plain data, so evaluation needs neither DeepSpeed nor trust. A raw folder is read
only with ``trust_checkpoint=true``. LoRA runs under DeepSpeed save without frozen parameters, so their
consolidated file holds only the adapters and the head.

The stored config is instantiated again on evaluation; :func:`check_stored_targets` lets through only the
``_target_`` classes this package's configs name.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from emoreason.config import ConfigError
from emoreason.io import atomic_write
from emoreason.models.methods import method_targets
from emoreason.training.adapters import is_adapter_folder, read_adapter_folder
from emoreason.training.optimizers import upgrade_stored_optim

log = logging.getLogger(__name__)

TRUST_OPTION = "trust_checkpoint=true"

CONSOLIDATED_KEYS = ("state_dict", "emoreason", "epoch", "global_step", "pytorch-lightning_version")
"""What a consolidated ZeRO checkpoint keeps: evaluation's needs, not DeepSpeed's bookkeeping (its config,
parameter shapes, sampler state), which a sharded resume reads from the folder itself."""

INSTANTIATED_PARTS = ("data.source", "model", "method", "lora", "optim", "scheduler")
"""The stored config's nodes that rebuilding a run passes to ``hydra.utils.instantiate``."""

ALLOWED_TARGETS = method_targets() | frozenset(
    {
        "emoreason.data.sources.KoteSource",
        "emoreason.data.sources.ReasoningSource",
        "emoreason.models.backbones.EmbeddedBackbone",
        "emoreason.models.backbones.PretrainedBackbone",
        "emoreason.models.lora.LoraSettings",
        "emoreason.training.optimizers.adamw",
        "emoreason.training.optimizers.linear_warmup",
    }
)
"""Every ``_target_`` that ``conf/{data,model,method,lora,optim,scheduler}`` names (a test keeps them in
step). A prefix such as ``emoreason.`` would not do: ``emoreason.io.write_text_atomic`` with stored arguments
writes any file. The method classes are found from their folder (:func:`method_targets`), so adding a method
adds no line here."""

MOVED_TARGETS = {
    "emoreason.models.methods.ClassifierMethod": "emoreason.models.methods.classifier.ClassifierMethod",
    "emoreason.models.generative.LabelOnlyMethod": "emoreason.models.methods.generative.LabelOnlyMethod",
    "emoreason.models.generative.ExplainThenPredictMethod": (
        "emoreason.models.methods.generative.ExplainThenPredictMethod"
    ),
    "emoreason.models.generative.PredictThenExplainMethod": (
        "emoreason.models.methods.generative.PredictThenExplainMethod"
    ),
    "emoreason.models.generative.MultitaskMethod": "emoreason.models.methods.generative.MultitaskMethod",
}
"""``_target_`` a checkpoint written before a class moved still names → where the class lives now. The one
table of moved classes: :func:`current_targets` applies it to every stored config read back, before the
allow-list check; when a class that configs name moves, its old path gets a line here."""


class CheckpointError(ConfigError):
    """A refused or unreadable ``ckpt_path``; the message names the file and what to do."""


def _refusal(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: refused: {why}. Loading it would run code stored in the file. If you made it or trust "
        f"its source, pass {TRUST_OPTION} (README: 'Sharing checkpoints' says how to re-save it safely)"
    )


def consolidate_zero_checkpoint(folder: str | Path) -> Path:
    """``<folder>.fp32.ckpt``: a DeepSpeed ZeRO folder as one file of plain data (made once, then reused).

    DeepSpeed's converter (through Lightning's ``convert_zero_checkpoint_to_fp32_state_dict``) unpickles the
    folder, so call this only for a folder this process wrote, or one the user trusts. Its output goes to a
    scratch file that is deleted; what we keep (:data:`CONSOLIDATED_KEYS`) is written through
    :func:`emoreason.io.atomic_write`, so an interrupted run never leaves a truncated consolidated file.
    """
    folder = Path(folder)
    consolidated = folder.with_name(folder.name + ".fp32.ckpt")
    if consolidated.exists():
        return consolidated
    from lightning.pytorch.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict

    scratch = consolidated.with_name(f".{consolidated.name}.{os.getpid()}.converted")
    try:
        client_state = convert_zero_checkpoint_to_fp32_state_dict(folder, scratch)
    finally:
        scratch.unlink(missing_ok=True)
    kept = {key: client_state[key] for key in CONSOLIDATED_KEYS if key in client_state}
    save_plain(kept, consolidated, source=folder)
    return consolidated


def checkpoint_file(path: str | Path, *, trust: bool = False) -> Path:
    """The single file to read for ``path``: the file itself, or a ZeRO folder's consolidated file.

    Raises :class:`CheckpointError` for a folder not yet consolidated unless ``trust`` (then it is
    consolidated now), and ``FileNotFoundError`` for a missing path.
    """
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        consolidated = path.with_name(path.name + ".fp32.ckpt")
        if consolidated.exists():
            return consolidated
        if not trust:
            raise _refusal(path, "a DeepSpeed ZeRO folder without its consolidated .fp32.ckpt beside it")
        log.warning("%s: unpickling the DeepSpeed ZeRO folder %s to consolidate it", TRUST_OPTION, path)
        return consolidate_zero_checkpoint(path)
    raise FileNotFoundError(f"checkpoint {path} does not exist (expected a .ckpt file or a DeepSpeed folder)")


def _first_line_of(exc: BaseException) -> str:
    """What torch's long message says was refused (``the global builtins.open``), else its first line."""
    text = str(exc)
    if named := re.search(r"Unsupported global: GLOBAL (\S+)", text):
        return f"the global {named.group(1)}"
    detail = re.search(r"WeightsUnpickler error: (.+?)(?:\. |\n|$)", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return detail.group(1) if detail else (lines or [type(exc).__name__])[0]


def load_checkpoint(path: str | Path, *, trust: bool = False, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint's contents on CPU, read with PyTorch's weights-only unpickler.

    ``trust`` (``trust_checkpoint=true``) unpickles in full a file that fails that, with a warning: any code
    it holds runs. ``mmap`` maps tensors instead of reading them (a cheap check before Lightning loads the
    file). An adapter folder (:mod:`emoreason.training.adapters`) is read from its safetensors files.
    Raises :class:`CheckpointError` naming the file, else ``FileNotFoundError``.
    """
    if is_adapter_folder(path):
        return read_adapter_folder(path)
    if trust:
        log.warning("%s: %s is unpickled in full if it holds more than plain data", TRUST_OPTION, path)
    file = checkpoint_file(path, trust=trust)
    try:
        return torch.load(file, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        if not trust:
            why = f"it holds objects other than tensors and plain data ({_first_line_of(exc)})"
            raise _refusal(file, why) from None
        log.warning("%s: unpickling %s in full (%s)", TRUST_OPTION, file, _first_line_of(exc))
    # OSError: a truncated file fails to memory-map; KeyError: a file that is no torch archive, unmapped
    except (RuntimeError, EOFError, OSError, KeyError) as exc:
        raise CheckpointError(f"{file}: not a readable checkpoint ({_first_line_of(exc)})") from None
    return torch.load(file, map_location="cpu", weights_only=False)


def resume_weights_only(ckpt_path: str | Path | None, *, trust: bool = False) -> bool:
    """``weights_only`` for Lightning's ``fit(ckpt_path=...)``, after checking the file as evaluation would.

    Without ``trust`` the file must pass the weights-only unpickler (checked here, memory-mapped, so the
    refusal is our one line); a ZeRO folder, which DeepSpeed resumes from by unpickling, needs ``trust``.
    """
    if ckpt_path is None:
        return True
    if is_adapter_folder(ckpt_path):
        raise CheckpointError(
            f"{ckpt_path}: an adapter folder holds no training state to resume from; pass the run's "
            "checkpoints/last.ckpt (evaluate.py reads adapter folders)"
        )
    if Path(ckpt_path).is_dir():
        if not trust:
            raise _refusal(Path(ckpt_path), "DeepSpeed resumes from a ZeRO folder by unpickling it")
        log.warning("%s: DeepSpeed unpickles %s to resume", TRUST_OPTION, ckpt_path)
        return False
    load_checkpoint(ckpt_path, trust=trust, mmap=True)
    return not trust


def _plain(value: Any, where: str) -> Any:
    """``value`` as what the weights-only unpickler accepts; config containers become dicts and lists."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=False)
    if isinstance(value, Mapping):
        return {key: _plain(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item, f"{where}[{i}]") for i, item in enumerate(value))
    if value is None or isinstance(value, str | int | float | bool | bytes | torch.Tensor | torch.Size):
        return value
    raise CheckpointError(
        f"{where} holds a {type(value).__module__}.{type(value).__qualname__}, which only full unpickling "
        "reads; store it as plain data (dicts, lists, strings, numbers, tensors)"
    )


def save_plain(checkpoint: Mapping[str, Any], path: str | Path, *, source: str | Path) -> Path:
    """Write ``checkpoint`` as tensors and plain data only; ``source`` names it in errors."""
    plain = _plain(checkpoint, str(source))
    with atomic_write(path, binary=True) as handle:
        torch.save(plain, handle)
    return Path(path)


def resave_trusted(source: str | Path, destination: str | Path) -> Path:
    """Re-save a checkpoint you trust (e.g. one from before weights-only loading) as a safe one.

    ``source`` is unpickled in full — only for files you made or trust. Every entry is kept (training can
    resume from ``destination``); config containers become plain dicts, and an object of another kind is an
    error naming its key. The result is read back with the weights-only unpickler before it is returned.
    """
    checkpoint = torch.load(checkpoint_file(source, trust=True), map_location="cpu", weights_only=False)
    save_plain(checkpoint, destination, source=source)
    load_checkpoint(destination, mmap=True)
    return Path(destination)


def _targets(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "_target_":
                yield f"{where}._target_", value
            else:
                yield from _targets(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _targets(value, f"{where}[{i}]")


def current_targets(config: Any) -> Any:
    """A copy of a stored ``config`` in today's form: every moved ``_target_`` (:data:`MOVED_TARGETS`)
    renamed, and an ``optim`` block from before the optimizer and schedule were targets made today's
    ``optim`` and ``scheduler`` (:func:`~emoreason.training.optimizers.upgrade_stored_optim`)."""
    renamed = renamed_targets(config, MOVED_TARGETS)
    return upgrade_stored_optim(renamed) if isinstance(renamed, Mapping) else renamed


def renamed_targets(config: Any, renames: Mapping[str, str]) -> Any:
    """A copy of ``config``, every ``_target_`` that is a key of ``renames`` replaced by its value."""
    if isinstance(config, Mapping):
        return {
            key: renames.get(value, value)
            if key == "_target_" and isinstance(value, str)
            else renamed_targets(value, renames)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [renamed_targets(value, renames) for value in config]
    return config


def check_stored_targets(config: Mapping[str, Any], source: str | Path) -> None:
    """Refuse a stored config whose instantiated parts name a ``_target_`` outside :data:`ALLOWED_TARGETS`.

    Interpolations are resolved first (instantiate sees resolved values). Raises :class:`CheckpointError`
    naming ``source``, the key and the value; ``trust_checkpoint`` does not lift it.
    """
    cfg = OmegaConf.create(dict(config))
    for part in INSTANTIATED_PARTS:
        node = OmegaConf.select(cfg, part, throw_on_missing=False)
        resolved = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        for key, target in _targets(resolved, part):
            if target not in ALLOWED_TARGETS:
                raise CheckpointError(
                    f"{source}: stored config {key}={target!r} is not one of this package's classes "
                    f"(allowed: {', '.join(sorted(ALLOWED_TARGETS))}); was the checkpoint edited?"
                )
