"""The encoded-dataset cache: safetensors only, verified on load, anything else rebuilt without being run."""

from __future__ import annotations

import logging
import pickle

import pytest
import torch

from emoreason.data.encoding_cache import encode_cached, encoding_key
from emoreason.data.kote import KoteRow
from emoreason.models.methods.classifier import ClassifierMethod
from emoreason.models.methods.generative import MultitaskMethod
from emoreason.models.tokenizers import train_tokenizer

ROWS = [
    KoteRow(id=str(i), text=text, labels=labels, reasoning=f"이유 {i}: {text}")
    for i, (text, labels) in enumerate(
        [("정말 고맙습니다", (0, 3)), ("어이가 없네 진짜", (10,)), ("", ()), ("ㅋㅋㅋ 웃기다", (5, 6, 43))]
        * 3
    )
]


class RunsOnLoad:
    """Unpickling this creates ``marker``: stands in for any code a pickle may run."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([r.text or "빈" for r in ROWS] + [r.reasoning for r in ROWS], "bpe", 300, None)


def _same(left: dict, right: dict) -> bool:
    return left.keys() == right.keys() and all(
        all(
            torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
            for a, b in zip(left[k], right[k], strict=True)
        )
        and len(left[k]) == len(right[k])
        for k in left
    )


def _cached(method, tokenizer, rows, max_length, *, train, cache_dir):
    """``method``'s encoding through the cache, as the data module asks for it."""
    return encode_cached(
        method.encode,
        tokenizer,
        rows,
        max_length,
        train=train,
        cache_dir=cache_dir,
        name=method.name,
        settings=repr(method),
    )


def _entry(tmp_path, method, tokenizer, train):
    key = encoding_key(repr(method), tokenizer, ROWS, 64, train)
    return tmp_path / "encoded" / f"{method.name}-{key}.safetensors"


@pytest.mark.parametrize(
    ("method", "train"), [(ClassifierMethod(), False), (MultitaskMethod(), True), (MultitaskMethod(), False)]
)
def test_a_cached_encoding_reads_back_exactly_what_was_encoded(method, train, tokenizer, tmp_path):
    fresh = method.encode(ROWS, tokenizer, 64, train=train)
    written = _cached(method, tokenizer, ROWS, 64, train=train, cache_dir=tmp_path)
    entry = _entry(tmp_path, method, tokenizer, train)
    assert [p.name for p in (tmp_path / "encoded").iterdir()] == [entry.name]
    assert entry.read_bytes()[8:9] == b"{"  # safetensors: a length, then a JSON header; not a pickle
    read = _cached(method, tokenizer, ROWS, 64, train=train, cache_dir=tmp_path)
    assert _same(read.columns, fresh) and _same(written.columns, fresh)
    assert read.lengths == [len(ids) for ids in fresh["input_ids"]]


def test_a_pickle_payload_in_place_of_an_entry_is_rebuilt_without_running_it(tokenizer, tmp_path, caplog):
    method = ClassifierMethod()
    _cached(method, tokenizer, ROWS, 64, train=False, cache_dir=tmp_path)
    entry, marker = _entry(tmp_path, method, tokenizer, False), tmp_path / "marker"
    entry.write_bytes(pickle.dumps({"input_ids": RunsOnLoad(str(marker))}))
    torch.save({"input_ids": RunsOnLoad(str(marker))}, tmp_path / "as_torch_save.pt")
    with caplog.at_level(logging.WARNING, logger="emoreason"):
        read = _cached(method, tokenizer, ROWS, 64, train=False, cache_dir=tmp_path)
        entry.write_bytes((tmp_path / "as_torch_save.pt").read_bytes())
        again = _cached(method, tokenizer, ROWS, 64, train=False, cache_dir=tmp_path)
    assert not marker.exists()
    fresh = method.encode(ROWS, tokenizer, 64, train=False)
    assert _same(read.columns, fresh) and _same(again.columns, fresh)
    warnings = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
    assert len(warnings) == 2 and all(str(entry) in w and "not a readable cache entry" in w for w in warnings)
    assert _same(_cached(method, tokenizer, ROWS, 64, train=False, cache_dir=tmp_path).columns, fresh)


def test_an_altered_or_misplaced_entry_is_rebuilt(tokenizer, tmp_path, caplog):
    method = ClassifierMethod()
    _cached(method, tokenizer, ROWS, 64, train=False, cache_dir=tmp_path)
    entry = _entry(tmp_path, method, tokenizer, False)
    data = bytearray(entry.read_bytes())
    data[-8] ^= 0x01  # one bit of the last array's values
    entry.write_bytes(bytes(data))
    fresh = method.encode(ROWS, tokenizer, 64, train=False)
    with caplog.at_level(logging.WARNING, logger="emoreason"):
        assert _same(_cached(method, tokenizer, ROWS, 64, train=False, cache_dir=tmp_path).columns, fresh)
        other = ROWS[:4]  # another encoding's file copied under this key's name
        _cached(method, tokenizer, other, 64, train=False, cache_dir=tmp_path)
        other_entry = (
            tmp_path / "encoded" / f"{method.name}-{encoding_key(repr(method), tokenizer, other, 64, False)}"
        )
        entry.write_bytes(other_entry.with_suffix(".safetensors").read_bytes())
        assert _same(_cached(method, tokenizer, ROWS, 64, train=False, cache_dir=tmp_path).columns, fresh)
    reasons = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
    assert len(reasons) == 2
    assert "do not match the sha256" in reasons[0]
    assert f"not {encoding_key(repr(method), tokenizer, ROWS, 64, False)!r}" in reasons[1]
