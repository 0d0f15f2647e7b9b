"""Every method learns (its loss falls on a small batch), decodes left-padded batches exactly, and scores."""

from __future__ import annotations

import pytest
import torch

from emoreason.config import ConfigError
from emoreason.models.backbones import EmbeddedBackbone
from emoreason.models.decoding import greedy_generate
from emoreason.models.heads import DecoderClassifier
from emoreason.models.methods.classifier import ClassifierMethod
from emoreason.models.methods.generative import (
    ExplainThenPredictMethod,
    LabelOnlyMethod,
    MultitaskMethod,
    PredictThenExplainMethod,
)
from emoreason.models.targets import Pieces, labels_line
from tests.support.reasoning import collate, tiny_backbone, train_steps

pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize(
    "method",
    [
        ClassifierMethod(dropout=0.0),
        LabelOnlyMethod(),
        ExplainThenPredictMethod(max_reasoning_tokens=24),
        PredictThenExplainMethod(max_reasoning_tokens=24),
        MultitaskMethod(max_reasoning_tokens=24),
    ],
    ids=lambda m: m.name,
)
def test_loss_falls_when_overfitting_a_small_batch(method, rows, tokenizer):
    torch.manual_seed(0)
    model = method.build_model(tiny_backbone(), tokenizer)
    batch = collate(method, tokenizer, method.encode(rows[:4], tokenizer, 24, train=True))
    _, parts_before = method.loss(model, batch)
    losses = train_steps(method, model, batch, steps=12)
    assert losses[-1] < 0.5 * losses[0], losses
    total, parts = method.loss(model, batch)
    if isinstance(method, MultitaskMethod):  # both task losses are reported, fall, and make up the total
        assert set(parts) == {"label_loss", "rationale_loss"}
        assert all(parts[k] < 0.5 * parts_before[k] for k in parts)
        assert float(total) == pytest.approx(float(0.5 * parts["label_loss"] + 0.5 * parts["rationale_loss"]))
    else:
        assert parts == {}


def test_decoder_classifier_pools_the_last_real_token_on_either_side(rows, tokenizer):
    torch.manual_seed(0)
    model = ClassifierMethod(dropout=0.0).build_model(tiny_backbone(), tokenizer).eval()
    assert isinstance(model, DecoderClassifier)
    ids = tokenizer([r.text for r in rows[:3]])["input_ids"]
    alone = torch.cat([model(torch.tensor([i]), torch.ones(1, len(i), dtype=torch.long)) for i in ids])
    for side in ("left", "right"):
        width = max(map(len, ids)) + 2
        padded = torch.full((3, width), tokenizer.pad_token_id)
        mask = torch.zeros(3, width, dtype=torch.long)
        for r, row in enumerate(ids):
            span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
            padded[r, span], mask[r, span] = torch.tensor(row), 1
        assert torch.allclose(model(padded, mask), alone, atol=1e-5), side


def test_left_padded_batches_score_and_decode_as_single_rows(rows, tokenizer):
    method = LabelOnlyMethod(max_new_tokens=12)
    torch.manual_seed(0)
    model = method.build_model(tiny_backbone(), tokenizer).eval()
    columns = method.encode(rows[:3], tokenizer, 24, train=False)
    batch = collate(method, tokenizer, columns)
    assert (batch["attention_mask"][:, -1] == 1).all()  # prompts end where generation starts
    together = greedy_generate(model, batch, method.tasks[0], 12)
    for r in range(3):
        alone = greedy_generate(model, collate(method, tokenizer, columns, [r]), method.tasks[0], 12)[0]
        assert alone == together[r]
        row_logits = model(
            batch["input_ids"][r : r + 1, -len(columns["input_ids"][r]) :],
            torch.ones(1, len(columns["input_ids"][r]), dtype=torch.long),
        )
        padded_logits = model(batch["input_ids"], batch["attention_mask"])[r, -len(columns["input_ids"][r]) :]
        assert torch.allclose(row_logits[0], padded_logits, atol=1e-5)


@pytest.fixture(scope="module")
def memorised(rows, tokenizer):
    """predict_then_explain overfitted on 3 comments until it writes their label lines back."""
    method = PredictThenExplainMethod(max_reasoning_tokens=24, max_new_tokens=120)
    torch.manual_seed(0)
    model = method.build_model(tiny_backbone(), tokenizer)
    batch = collate(method, tokenizer, method.encode(rows[:3], tokenizer, 24, train=True))
    train_steps(method, model, batch, steps=60)
    eval_batch = collate(method, tokenizer, method.encode(rows[:3], tokenizer, 24, train=False))
    return method, model.eval(), eval_batch


def test_generation_reproduces_learnt_labels_and_stops_after_the_label_line(memorised, rows, tokenizer):
    method, model, batch = memorised
    with torch.no_grad():
        scored = method.detailed_scores(model, batch)
    assert torch.equal(scored.scores, batch["targets"])
    assert scored.diagnostics["unparseable_rate"].sum() == 0
    pieces = Pieces.of(tokenizer)
    label_line_tokens = [len(pieces.label_line_ids(r.labels, method.tasks[0])) for r in rows[:3]]
    assert scored.diagnostics["generated_tokens"].tolist() == label_line_tokens  # no reasoning was generated
    assert scored.generated == [labels_line(r.labels) for r in rows[:3]]  # the text it wrote


def test_score_mode_ranks_labels_and_agrees_with_generation_at_one_half(memorised):
    _, model, batch = memorised
    scoring = PredictThenExplainMethod(
        max_reasoning_tokens=24, max_new_tokens=120, inference="score", score_batch_size=50
    )
    with torch.no_grad():
        scores = scoring.scores(model, batch)
    assert ((scores > 0) & (scores < 1)).any() and ((scores >= 0) & (scores <= 1)).all()
    assert torch.equal((scores > 0.5).float(), batch["targets"])


def test_score_mode_gives_zero_to_rows_without_a_parsable_label(rows, tokenizer):
    method = LabelOnlyMethod(max_new_tokens=4, inference="score")
    torch.manual_seed(0)
    model = method.build_model(tiny_backbone(), tokenizer).eval()
    batch = collate(method, tokenizer, method.encode(rows[:2], tokenizer, 24, train=False))
    with torch.no_grad():
        scored = method.detailed_scores(model, batch)
    assert scored.diagnostics["unparseable_rate"].tolist() == [1.0, 1.0]  # an untrained model writes junk
    assert torch.equal(scored.scores, torch.zeros(2, 44))


def test_generative_methods_need_a_decoder(tokenizer):
    encoder = EmbeddedBackbone("electra", config={"hidden_size": 32})
    with pytest.raises(ConfigError, match=r"needs a decoder backbone.*model=tiny_neox"):
        LabelOnlyMethod().build_model(encoder, tokenizer)
