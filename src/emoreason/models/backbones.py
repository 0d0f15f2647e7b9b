"""Backbones: which network and tokenizer a run uses, either downloaded or embedded.

- :class:`PretrainedBackbone` loads real weights with ``from_pretrained`` through the HF cache, pinned to a
  revision (``model=kcelectra``, ``model=polyglot5.8b``).
- :class:`EmbeddedBackbone` builds the same architecture class with small dimensions and random weights and
  trains its tokenizer on the training texts (``model=tiny_electra``): no download, runs on CPU.

Both expose the same three calls, so nothing downstream knows which one it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from emoreason.models.tokenizers import TokenizerKind, train_tokenizer, wrap_tokenizer

Architecture = Literal["encoder", "decoder"]


class BackboneUnavailableError(RuntimeError):
    """Pretrained weights or tokenizer could not be loaded (offline, wrong name or revision)."""


def _auto_model_class(architecture: Architecture) -> type[AutoModel] | type[AutoModelForCausalLM]:
    return AutoModel if architecture == "encoder" else AutoModelForCausalLM


def _prepared(network: PreTrainedModel, gradient_checkpointing: bool) -> PreTrainedModel:
    """Recompute activations in the backward pass when asked: memory for ~30% more compute.

    Non-reentrant checkpointing needs no input that requires grad, so it works with frozen embeddings (LoRA).
    """
    if gradient_checkpointing:
        network.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return network


@dataclass
class PretrainedBackbone:
    """A Hugging Face model id at a pinned revision, e.g. ``beomi/KcELECTRA-base-v2022``."""

    name_or_path: str
    revision: str = "main"
    architecture: Architecture = "encoder"
    torch_dtype: str | None = None
    """"bfloat16" loads a large decoder in half the memory; None keeps the checkpoint's dtype."""
    gradient_checkpointing: bool = False

    @property
    def name(self) -> str:
        return self.name_or_path

    def _unavailable(self, what: str, exc: Exception) -> BackboneUnavailableError:
        return BackboneUnavailableError(
            f"could not load the {what} of {self.name_or_path}@{self.revision} ({exc.__class__.__name__}: "
            f"{exc}). Without network access, pre-download it into the HF cache (HF_HOME) or train the "
            "embedded model instead: model=tiny_electra (encoder) or model=tiny_neox (decoder)."
        )

    def load_tokenizer(
        self, train_texts: Sequence[str], cache_dir: str | Path | None
    ) -> PreTrainedTokenizerBase:
        del train_texts, cache_dir  # the vocabulary comes with the checkpoint
        try:
            return AutoTokenizer.from_pretrained(self.name_or_path, revision=self.revision)
        except (OSError, ValueError) as exc:
            raise self._unavailable("tokenizer", exc) from exc

    def load_network(self, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
        del tokenizer
        kwargs: dict[str, Any] = {"revision": self.revision}
        if self.torch_dtype:
            kwargs["dtype"] = self.torch_dtype
        try:
            network = _auto_model_class(self.architecture).from_pretrained(self.name_or_path, **kwargs)
        except (OSError, ValueError) as exc:
            raise self._unavailable("weights", exc) from exc
        return _prepared(network, self.gradient_checkpointing)

    def tokenizer_state(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
        del tokenizer
        return {}

    def restore_tokenizer(self, state: dict[str, Any]) -> PreTrainedTokenizerBase:
        del state
        return self.load_tokenizer((), None)


@dataclass
class EmbeddedBackbone:
    """A small, randomly initialised model of a real architecture with a tokenizer trained here."""

    model_type: str
    """A transformers model type ("electra", "gpt_neox"): the same classes as the full-size model."""
    config: dict[str, Any] = field(default_factory=dict)
    architecture: Architecture = "encoder"
    tokenizer_kind: TokenizerKind = "wordpiece"
    vocab_size: int = 8000
    init_seed: int | None = None
    """Seeds the random weights, so a checkpoint that omits frozen weights (LoRA) can rebuild them; None
    draws them from the global RNG (seeded per run by train.py)."""
    gradient_checkpointing: bool = False

    @property
    def name(self) -> str:
        return f"tiny-{self.model_type}"

    def load_tokenizer(
        self, train_texts: Sequence[str], cache_dir: str | Path | None
    ) -> PreTrainedTokenizerBase:
        return train_tokenizer(list(train_texts), self.tokenizer_kind, self.vocab_size, cache_dir)

    def load_network(self, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
        special_ids = {
            key: getattr(tokenizer, key)
            for key in ("pad_token_id", "bos_token_id", "eos_token_id")
            if getattr(tokenizer, key) is not None
        }
        config = AutoConfig.for_model(
            self.model_type, vocab_size=len(tokenizer), **special_ids, **self.config
        )
        seeded = torch.random.fork_rng(devices=[]) if self.init_seed is not None else nullcontext()
        with seeded:
            if self.init_seed is not None:
                torch.manual_seed(self.init_seed)
            network = _auto_model_class(self.architecture).from_config(config)
        return _prepared(network, self.gradient_checkpointing)

    def tokenizer_state(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
        """The trained vocabulary, stored inside every checkpoint so evaluation needs nothing else."""
        return {"tokenizer_json": tokenizer.backend_tokenizer.to_str()}

    def restore_tokenizer(self, state: dict[str, Any]) -> PreTrainedTokenizerBase:
        return wrap_tokenizer(state["tokenizer_json"], self.tokenizer_kind)


Backbone = PretrainedBackbone | EmbeddedBackbone


class NetworkSource(Protocol):
    """What a method builds its model from: a backbone, or one whose network gets LoRA adapters."""

    architecture: Architecture

    def load_network(self, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel: ...
