"""LoRA via PEFT: which weights train, what checkpoints hold, and that reloaded adapters predict the same."""

from __future__ import annotations

import pytest
import torch

from emoreason.config import ConfigError
from emoreason.models.backbones import EmbeddedBackbone
from emoreason.models.decoding import greedy_generate
from emoreason.models.lora import with_lora
from emoreason.models.methods.classifier import ClassifierMethod
from emoreason.models.methods.generative import LabelOnlyMethod
from emoreason.training.module import EmotionModule
from emoreason.training.optimizers import adamw, linear_warmup
from tests.support.project import lora_settings
from tests.support.reasoning import collate, tiny_backbone

pytestmark = pytest.mark.shared_data


def _module(method, tokenizer, settings=None) -> EmotionModule:
    network = method.build_model(
        with_lora(tiny_backbone(), settings or lora_settings(r=4, alpha=8)), tokenizer
    )
    return EmotionModule(network, method, adamw, linear_warmup)


def test_only_adapters_train_on_every_neox_linear_layer_never_embed_out(tokenizer):
    module = _module(LabelOnlyMethod(), tokenizer)
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    adapted = {n.split(".lora_A.")[0].rsplit(".", 1)[-1] for n in trainable if ".lora_A." in n}
    targets = lora_settings().target_modules
    assert adapted == set(targets) == {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}
    assert len(trainable) == 2 * len(targets) * 2  # A and B, four layers per block, two blocks
    assert not any("embed" in n or "lm_head" in n for n in trainable)


def test_a_classifier_head_stays_trainable_under_lora(tokenizer):
    module = _module(ClassifierMethod(), tokenizer)
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert {"model.head.weight", "model.head.bias"} <= trainable
    assert not any("embed_in" in n or "layernorm" in n for n in trainable)


@pytest.mark.parametrize(
    ("settings", "backbone", "message"),
    [
        (lora_settings(target_modules=["query_key_value", "lm_head"]), tiny_backbone(), "output embedding"),
        (lora_settings(target_modules=["q_proj"]), tiny_backbone(), r"lora.target_modules=\['q_proj'\]"),
        (
            lora_settings(),
            EmbeddedBackbone("gpt_neox", architecture="decoder", tokenizer_kind="bpe"),
            "set model.init_seed",
        ),
    ],
)
def test_unusable_lora_settings_fail_naming_the_key(settings, backbone, message, tokenizer):
    with pytest.raises(ConfigError, match=message):
        LabelOnlyMethod().build_model(with_lora(backbone, settings), tokenizer)


def test_saved_and_reloaded_adapters_give_identical_predictions(tokenizer, rows, tmp_path):
    method = LabelOnlyMethod(max_new_tokens=16)
    trained = _module(method, tokenizer).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # stand-in for training: adapters that change the outputs
        for param in trained.parameters():
            if param.requires_grad:
                param.normal_(0, 0.3)
    torch.save({"state_dict": trained.state_dict()}, tmp_path / "adapters.ckpt")
    saved = torch.load(tmp_path / "adapters.ckpt", weights_only=True)["state_dict"]
    assert set(saved) == {n for n, p in trained.named_parameters() if p.requires_grad}  # no frozen weight
    batch = collate(method, tokenizer, method.encode(rows[:4], tokenizer, 24, train=False))

    def outputs(module):
        with torch.no_grad():
            return module.model(batch["input_ids"], batch["attention_mask"]), greedy_generate(
                module.model, batch, method.tasks[0], 16
            )

    fresh = _module(method, tokenizer).eval()
    assert not torch.allclose(outputs(fresh)[0], outputs(trained)[0])
    fresh.load_state_dict(saved)
    (logits, generations), (expected_logits, expected_generations) = outputs(fresh), outputs(trained)
    assert torch.equal(logits, expected_logits) and generations == expected_generations

    incomplete = {k: v for k, v in saved.items() if "layers.0.attention.query_key_value.lora_A" not in k}
    with pytest.raises(RuntimeError, match="1 trainable weights missing"):
        _module(method, tokenizer).load_state_dict(incomplete)


def test_without_lora_checkpoints_hold_every_weight(tokenizer):
    network = LabelOnlyMethod().build_model(tiny_backbone(), tokenizer)
    module = EmotionModule(network, LabelOnlyMethod(), adamw, linear_warmup)
    assert set(module.state_dict()) >= {n for n, _ in module.named_parameters()}
