"""The validation step's costs: one forward per classifier validation batch, and no decoding of generated
text during validation (the optimizer's are in test_optimizers.py)."""

from __future__ import annotations

import pytest
import torch

from emoreason.data.kote import read_kote_tsv
from emoreason.models.methods.classifier import ClassifierMethod
from emoreason.models.methods.generative import LabelOnlyMethod
from emoreason.models.tokenizers import train_tokenizer
from emoreason.training.module import EmotionModule
from emoreason.training.optimizers import adamw, linear_warmup
from tests.support.reasoning import collate, tiny_backbone

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


def test_classifier_validation_runs_one_forward_for_its_loss_and_scores(
    comments, kote_tokenizer, monkeypatch
):
    torch.manual_seed(0)
    method = ClassifierMethod(dropout=0.0)
    model = method.build_model(tiny_backbone(), kote_tokenizer).eval()
    batch = collate(method, kote_tokenizer, method.encode(comments, kote_tokenizer, 32, train=False))
    module = EmotionModule(model, method, adamw, linear_warmup)
    values = logged(module, monkeypatch)
    forwards = []
    model.register_forward_hook(lambda *_: forwards.append(1))
    with torch.no_grad():
        module.validation_step(batch, 0)
        assert len(forwards) == 1
        expected_loss, _ = method.loss(model, batch)
        expected_scores = method.scores(model, batch)
    assert torch.allclose(values["val/loss"], expected_loss)
    reference = EmotionModule(model, method, adamw, linear_warmup)
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
    module = EmotionModule(model, method, adamw, linear_warmup)
    values = logged(module, monkeypatch)
    decoded = []
    original = kote_tokenizer.batch_decode
    monkeypatch.setattr(
        kote_tokenizer, "batch_decode", lambda *a, **k: decoded.append(1) or original(*a, **k)
    )
    with torch.no_grad():
        module.validation_step(batch, 0)
        assert decoded == [] and set(values) == {"val/unparseable_rate", "val/generated_tokens"}
        scored = method.detailed_scores(model, batch)
    texts = scored.generated
    assert decoded == [1] and len(texts) == len(comments) and all(isinstance(t, str) for t in texts)
    assert scored.generated is texts and decoded == [1]  # decoded once, on first read
