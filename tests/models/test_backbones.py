"""Decoder backbone configs: Polyglot pinned, LoRA by default; tiny_neox rebuilt identically from its seed."""

from __future__ import annotations

import re

import huggingface_hub
import pytest
import torch
from hydra.utils import instantiate

from emoreason.config import TrainConfig, validate
from emoreason.models.backbones import BackboneUnavailableError
from emoreason.models.lora import LoraSettings


def test_polyglot_is_pinned_and_brings_lora_unless_overridden(compose_train):
    cfg = validate(compose_train("model=polyglot5.8b"), TrainConfig)
    assert re.fullmatch(r"[0-9a-f]{40}", cfg.model.revision)
    assert cfg.model.architecture == "decoder" and cfg.model.gradient_checkpointing
    assert isinstance(instantiate(cfg.lora), LoraSettings)
    assert compose_train("model=polyglot5.8b", "lora=none").lora is None
    assert compose_train().lora is None  # tiny_electra, kote_plain: unchanged defaults


def test_polyglot_offline_error_names_the_revision_and_the_embedded_model(compose_train, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once, at import
    backbone = instantiate(compose_train("model=polyglot5.8b").model)
    with pytest.raises(
        BackboneUnavailableError, match=rf"(?s)polyglot-ko-5.8b@{backbone.revision}.*model=tiny_neox"
    ):
        backbone.load_tokenizer([], None)


def test_tiny_neox_weights_depend_on_init_seed_only(compose_train, tokenizer):
    cfg = compose_train("model=tiny_neox", "seed=3")
    first, second = (instantiate(cfg.model).load_network(tokenizer) for _ in range(2))
    assert type(first).__name__ == "GPTNeoXForCausalLM"
    assert first.config.rope_parameters["partial_rotary_factor"] == 0.25  # rotary_pct, as Polyglot
    torch.manual_seed(123)  # the global RNG has no say
    third = instantiate(cfg.model).load_network(tokenizer)
    other = instantiate(compose_train("model=tiny_neox", "seed=4").model).load_network(tokenizer)
    weights = [m.get_input_embeddings().weight for m in (first, second, third, other)]
    assert torch.equal(weights[0], weights[1]) and torch.equal(weights[0], weights[2])
    assert not torch.equal(weights[0], weights[3])
