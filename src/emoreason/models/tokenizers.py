"""Tokenizers trained here, for the embedded tiny models that must run without any download.

Training a WordPiece/BPE vocabulary on the training texts takes seconds; the result is cached under the
cache dir keyed by a hash of the texts and settings, so every run after the first loads it instantly.

Reproducibility: the `tokenizers` WordPiece trainer is not deterministic across processes (its
continuing-subword ids follow hash-map order, huggingface/tokenizers#1794; BPE training is), so two
machines with empty caches may train different vocabularies from the same texts and then report different
figures for the same seed. The cached file (and the copy every checkpoint carries) is what makes a run
repeatable: share the cache dir (``paths.cache_dir``) between runs that must be compared exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from emoreason.io import write_text_atomic

TokenizerKind = Literal["wordpiece", "bpe"]

WORDPIECE_SPECIALS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
BPE_SPECIALS = {"pad_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|unk|>"}


def _texts_digest(texts: Sequence[str], kind: str, vocab_size: int) -> str:
    digest = hashlib.sha256(f"{kind}:{vocab_size}:{len(texts)}".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _train(texts: Sequence[str], kind: TokenizerKind, vocab_size: int) -> Tokenizer:
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer: trainers.Trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=list(WORDPIECE_SPECIALS.values()), min_frequency=2
        )
        tok.train_from_iterator(texts, trainer=trainer)
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        return tok
    tok = Tokenizer(models.BPE(unk_token="<|unk|>"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=sorted(set(BPE_SPECIALS.values())),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def wrap_tokenizer(tokenizer_json: str, kind: TokenizerKind) -> PreTrainedTokenizerFast:
    """A transformers tokenizer around a serialised `tokenizers` one (how checkpoints carry it)."""
    specials = {"wordpiece": WORDPIECE_SPECIALS, "bpe": BPE_SPECIALS}.get(kind)
    if specials is None:
        raise ValueError(f"tokenizer_kind must be 'wordpiece' or 'bpe', got {kind!r}")
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer_json), **specials)


def train_tokenizer(
    texts: Sequence[str], kind: TokenizerKind, vocab_size: int, cache_dir: str | Path | None
) -> PreTrainedTokenizerFast:
    """Train (or load from cache) a ``kind`` tokenizer on ``texts``; the cache write is atomic."""
    if not texts:
        raise ValueError("cannot train a tokenizer on zero texts")
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / "tokenizers" / f"{kind}-{_texts_digest(texts, kind, vocab_size)}.json"
        if cached.exists():
            return wrap_tokenizer(cached.read_text(encoding="utf-8"), kind)
    serialised = _train(texts, kind, vocab_size).to_str()
    if cached is not None:
        write_text_atomic(cached, serialised, durable=False)  # a cache: rebuilt if a crash loses it
    return wrap_tokenizer(serialised, kind)
