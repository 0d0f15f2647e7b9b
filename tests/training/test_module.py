"""The training step's costs: fused AdamW where the device has it, one forward per classifier validation
batch, and no decoding of generated text during validation."""

from __future__ import annotations

import pytest
import torch
from reasoning.support import collate, tiny_backbone

from emoreason.data.kote import read_kote_tsv
from emoreason.models.generative import LabelOnlyMethod
from emoreason.models.methods import ClassifierMethod
from emoreason.models.tokenizers import train_tokenizer
from emoreason.training.module import EmotionModule, OptimConfig, adamw, method_scores

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def comments(kote_dir):
    return read_kote_tsv(kote_dir / "test.tsv")[:8]


@pytest.fixture(scope="module")
def kote_tokenizer(comments, cache_dir):
    return train_tokenizer([r.text for r in comments], "bpe", 1000, cache_dir)


def logged(module: EmotionModule, monkeypatch) -> dict[str, torch.Tensor]:
    values: dict[str, torch.Tensor] = {}
    monkeypatch.setattr(module, "log", lambda name, value, **_: values.__setitem__(name, value))
    return values


def test_adamw_is_fused_on_cpu_and_steps_as_the_default_does():
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    copies = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    fused = adamw([{"params": weights, "weight_decay": 0.01}], OptimConfig(lr=0.1))
    plain = torch.optim.AdamW(copies, lr=0.1, weight_decay=0.01)
    assert fused.param_groups[0]["fused"] is True and plain.param_groups[0]["fused"] is None
    for _ in range(3):
        for w, c in zip(weights, copies, strict=True):
            w.grad = torch.full_like(w, 0.5) + w.detach()
            c.grad = torch.full_like(c, 0.5) + c.detach()
        fused.step()
        plain.step()
    assert all(torch.allclose(w, c, atol=1e-6) for w, c in zip(weights, copies, strict=True))


def test_adamw_falls_back_where_the_device_has_no_fused_kernel():
    on_meta = torch.nn.Parameter(torch.empty(2, 2, device="meta"))
    assert adamw([{"params": [on_meta], "weight_decay": 0.0}], OptimConfig()).param_groups[0]["fused"] is None


def test_classifier_validation_runs_one_forward_for_its_loss_and_scores(
    comments, kote_tokenizer, monkeypatch
):
    torch.manual_seed(0)
    method = ClassifierMethod(dropout=0.0)
    model = method.build_model(tiny_backbone(), kote_tokenizer).eval()
    batch = collate(method, kote_tokenizer, method.encode(comments, kote_tokenizer, 32, train=False))
    module = EmotionModule(model, method, OptimConfig())
    values = logged(module, monkeypatch)
    forwards = []
    model.register_forward_hook(lambda *_: forwards.append(1))
    with torch.no_grad():
        module.validation_step(batch, 0)
        assert len(forwards) == 1
        expected_loss, _ = method.loss(model, batch)
        expected_scores = method.scores(model, batch)
    assert torch.allclose(values["val/loss"], expected_loss)
    reference = EmotionModule(model, method, OptimConfig())
    reference.val_metrics.update(expected_scores, batch["targets"].int())
    assert torch.allclose(
        module.val_metrics.compute()["macro_f1"], reference.val_metrics.compute()["macro_f1"]
    )


def test_generative_validation_decodes_no_text_and_evaluation_still_gets_it(
    comments, kote_tokenizer, monkeypatch
):
    torch.manual_seed(0)
    method = LabelOnlyMethod(max_new_tokens=6)
    model = method.build_model(tiny_backbone(), kote_tokenizer).eval()
    batch = collate(method, kote_tokenizer, method.encode(comments, kote_tokenizer, 32, train=False))
    module = EmotionModule(model, method, OptimConfig())
    values = logged(module, monkeypatch)
    decoded = []
    original = kote_tokenizer.batch_decode
    monkeypatch.setattr(
        kote_tokenizer, "batch_decode", lambda *a, **k: decoded.append(1) or original(*a, **k)
    )
    with torch.no_grad():
        module.validation_step(batch, 0)
        assert decoded == [] and set(values) == {"val/unparseable_rate", "val/generated_tokens"}
        scored = method_scores(method, model, batch)
    texts = scored.generated
    assert decoded == [1] and len(texts) == len(comments) and all(isinstance(t, str) for t in texts)
    assert scored.generated is texts and decoded == [1]  # decoded once, on first read
