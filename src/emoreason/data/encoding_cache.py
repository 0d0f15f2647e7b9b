"""The encoded-dataset cache: one split's token columns, stored once per method, tokenizer and rows.

Caches are shared (``EMOREASON_CACHE`` on a group's disk), so an entry is data a colleague — or anyone who
can write there — made. It is therefore stored in safetensors (https://huggingface.co/docs/safetensors),
a format that holds arrays and strings and cannot run code, never as a pickle. The file is named by a hash
of everything that produced it; its metadata repeats that hash and a sha256 of its arrays, and both are
checked on load. An entry that is unreadable, of another key, or altered is logged and rebuilt, never used.

Columns are stored as one tensor each: rows of equal-size tensors (the 44 targets) stacked, ragged integer
lists (token ids, masks, labels) as their concatenated values plus row offsets.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from itertools import accumulate, chain, pairwise
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from transformers import PreTrainedTokenizerBase

from emoreason.data.batching import EncodedDataset
from emoreason.data.kote import KoteRow
from emoreason.io import atomic_write

log = logging.getLogger(__name__)

STACKED, RAGGED = "stacked", "ragged"


class Encode(Protocol):
    """How a split's rows become columns (a method's ``encode``): the cache runs it on a miss only."""

    def __call__(
        self, rows: Sequence[KoteRow], tokenizer: PreTrainedTokenizerBase, max_length: int, *, train: bool
    ) -> dict[str, list[Any]]: ...


class CacheEntryError(ValueError):
    """A cache entry that must not be used; the message says why. Never reaches the user: it is rebuilt."""


def encoding_key(
    settings: str,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[KoteRow],
    max_length: int,
    train: bool,
) -> str:
    """A hash of what produced an encoding: ``settings`` (the method's ``repr``), tokenizer vocabulary, rows,
    length, split."""
    digest = hashlib.sha256(f"{settings}|{max_length}|{train}|{len(tokenizer)}".encode())
    digest.update(tokenizer.backend_tokenizer.to_str().encode() if tokenizer.is_fast else b"slow")
    for row in rows:
        digest.update(f"{row.id}\t{row.text}\t{row.labels}\t{row.reasoning}\n".encode())
    return digest.hexdigest()[:20]


def _tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}\n".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def to_safetensors(columns: Mapping[str, list[Any]], key: str) -> bytes:
    """``columns`` as a safetensors file whose metadata carries ``key``, the column kinds and a digest."""
    tensors: dict[str, torch.Tensor] = {}
    kinds: dict[str, str] = {}
    for name, values in columns.items():
        if values and isinstance(values[0], torch.Tensor):
            tensors[name], kinds[name] = torch.stack(values), STACKED
        else:
            offsets = [0, *accumulate(len(v) for v in values)]
            tensors[f"{name}.values"] = torch.tensor(list(chain.from_iterable(values)), dtype=torch.long)
            tensors[f"{name}.offsets"] = torch.tensor(offsets, dtype=torch.long)
            kinds[name] = RAGGED
    metadata = {"key": key, "columns": json.dumps(kinds), "sha256": _tensors_digest(tensors)}
    return save(tensors, metadata=metadata)


def from_safetensors(path: Path, key: str, num_rows: int) -> dict[str, list[Any]]:
    """The columns stored at ``path``; raises :class:`CacheEntryError` unless it is intact and of ``key``."""
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        kinds = json.loads(metadata["columns"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise CacheEntryError(f"not a readable cache entry ({type(exc).__name__}: {exc})") from None
    if metadata.get("key") != key:
        raise CacheEntryError(f"made for key {metadata.get('key')!r}, not {key!r}")
    if metadata.get("sha256") != _tensors_digest(tensors):
        raise CacheEntryError("its arrays do not match the sha256 stored with them")
    columns: dict[str, list[Any]] = {}
    for name, kind in kinds.items():
        if kind == STACKED:
            columns[name] = list(tensors[name].unbind(0))
        else:
            values, offsets = tensors[f"{name}.values"].tolist(), tensors[f"{name}.offsets"].tolist()
            columns[name] = [values[start:end] for start, end in pairwise(offsets)]
    if {len(values) for values in columns.values()} != {num_rows}:
        raise CacheEntryError(f"holds {[len(v) for v in columns.values()]} rows per column, not {num_rows}")
    return columns


def encode_cached(
    encode: Encode,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[KoteRow],
    max_length: int,
    *,
    train: bool,
    cache_dir: str | Path | None,
    name: str,
    settings: str,
) -> EncodedDataset:
    """Tokenise ``rows`` once; reuse the verified stored result while settings, tokenizer, rows are unchanged.

    ``name`` (the method's) prefixes the file, ``settings`` (the method's ``repr``: its class and every
    field) goes into the key. The entry is ``<cache_dir>/encoded/<name>-<key>.safetensors``; one that fails
    verification is rebuilt (with a warning naming it and why) and replaced. The data layer knows no
    method: the caller (:class:`emoreason.training.datamodule.KoteDataModule`) passes what it needs.
    """
    if cache_dir is None:
        return EncodedDataset(encode(rows, tokenizer, max_length, train=train))
    key = encoding_key(settings, tokenizer, rows, max_length, train)
    path = Path(cache_dir) / "encoded" / f"{name}-{key}.safetensors"
    if path.exists():
        try:
            return EncodedDataset(from_safetensors(path, key, len(rows)))
        except CacheEntryError as exc:
            log.warning("encoded-data cache %s is not used (%s); rebuilding it", path, exc)
    columns = encode(rows, tokenizer, max_length, train=train)
    with atomic_write(path, binary=True, durable=False) as handle:  # a cache: rebuilt if lost
        handle.write(to_safetensors(columns, key))
    return EncodedDataset(columns)
