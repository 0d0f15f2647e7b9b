"""Score mode over a cached prompt equals 45 full teacher-forced forwards per comment (real KOTE comments)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from emoreason.data.kote import KoteRow, read_kote_tsv
from emoreason.models import likelihood
from emoreason.models.continuations import continuation_logprobs, group_by_prefix
from emoreason.models.decoding import CausalLM, Generation, cut_at_stop
from emoreason.models.heads import position_ids
from emoreason.models.likelihood import flip_scores
from emoreason.models.methods.generative import (
    ExplainThenPredictMethod,
    LabelOnlyMethod,
    MultitaskMethod,
    PredictThenExplainMethod,
)
from emoreason.models.targets import encode_task
from emoreason.models.tokenizers import train_tokenizer
from tests.support.reasoning import collate, tiny_backbone

pytestmark = pytest.mark.shared_data

COMMENTS = 64


def full_forward_logprobs(model: CausalLM, pairs, batch_size: int) -> torch.Tensor:
    """Reference: every (prefix + continuation) run whole, log-softmax over every position (the old path)."""
    totals = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        width = max(len(p) + len(c) for p, c in chunk)
        ids = torch.full((len(chunk), width), model.pieces.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        scored = torch.zeros_like(ids, dtype=torch.bool)
        for row, (prefix, cont) in enumerate(chunk):
            ids[row, : len(prefix) + len(cont)] = torch.tensor(prefix + cont)
            mask[row, : len(prefix) + len(cont)] = 1
            scored[row, len(prefix) : len(prefix) + len(cont)] = True
        logits = model.network(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        totals.append((logprobs.gather(-1, ids[:, 1:, None]).squeeze(-1) * scored[:, 1:]).sum(-1))
    return torch.cat(totals)


@pytest.fixture(scope="module")
def comments(kote_dir) -> list[KoteRow]:
    """Real test comments; each carries another comment as its 'reasoning' line, for the reasoning tasks."""
    rows = read_kote_tsv(kote_dir / "test.tsv")[: COMMENTS + 1]
    return [dataclasses.replace(row, reasoning=rows[i + 1].text) for i, row in enumerate(rows[:-1])]


@pytest.fixture(scope="module")
def kote_tokenizer(comments, cache_dir):
    return train_tokenizer([r.text for r in comments], "bpe", 1000, cache_dir)


def gold_generations(method, model: CausalLM, rows: list[KoteRow], max_length: int) -> list[Generation]:
    """What a model that learnt the format writes up to the end of its label line: the gold target's start."""
    task = method.tasks[0]
    prompts = model.pieces.prompts(task, rows, max_length)
    encoded = encode_task(task, rows, model.pieces, max_length, method.max_reasoning_tokens)
    newline = set(model.newline_tokens.tolist())
    generations = []
    for prompt, ids, row in zip(prompts, encoded["input_ids"], rows, strict=True):
        kept, spent = cut_at_stop(ids[len(prompt) :], model.pieces, newline, task.label_line + 1)
        generations.append(Generation(kept, spent, list(row.labels), True))
    return generations


@pytest.mark.parametrize(
    "method",
    [
        LabelOnlyMethod(),
        ExplainThenPredictMethod(max_reasoning_tokens=24),
        PredictThenExplainMethod(),
        MultitaskMethod(),
    ],
    ids=lambda m: m.name,
)
def test_cached_scores_equal_full_forward_scores_for_every_method(
    method, comments, kote_tokenizer, monkeypatch
):
    torch.manual_seed(0)
    model = method.build_model(tiny_backbone(init_seed=1), kote_tokenizer).eval()
    batch = collate(method, kote_tokenizer, method.encode(comments, kote_tokenizer, 48, train=False))
    generations = gold_generations(method, model, comments, 48)
    with torch.no_grad():
        cached = flip_scores(model, batch, generations, method.tasks[0], batch_size=100)
        monkeypatch.setattr(likelihood, "continuation_logprobs", full_forward_logprobs)
        reference = flip_scores(model, batch, generations, method.tasks[0], batch_size=100)
    assert reference.shape == (COMMENTS, 44) and reference.std() > 0.01  # scores that could differ
    assert (cached - reference).abs().max() < 1e-3
    same = ((cached > 0.5) == (reference > 0.5)).float().mean()
    assert same >= 0.999


def test_cached_logprobs_cover_branches_prefixes_of_the_trunk_and_chunking(comments, kote_tokenizer):
    model = LabelOnlyMethod().build_model(tiny_backbone(init_seed=2), kote_tokenizer).eval()
    ids = kote_tokenizer([r.text for r in comments[:5]], add_special_tokens=False)["input_ids"]
    pairs = [
        (ids[0], ids[1][:6]),  # the trunk of prefix ids[0]
        (ids[0], ids[1][:3]),  # the trunk's start: scored by the trunk's pass alone
        (ids[0], ids[1][:2] + ids[3][:4]),  # branches off after two tokens
        (ids[0], ids[4][:1]),  # one token, off the trunk at once
        (ids[2], ids[3][:4]),
        (ids[4][:2], ids[2][:5]),
        (ids[2], ids[1][:2]),
    ]
    groups = group_by_prefix(pairs)
    assert [g.trunk for g in groups] == [ids[1][:6], ids[3][:4], ids[2][:5]]
    assert [shared for _, shared, _ in groups[0].branches] == [6, 3, 2 + (ids[3][0] == ids[1][2]), 0]
    with torch.no_grad():
        for batch_size in (1, 2, 64):  # prefixes and continuations split over several passes, or one
            cached = continuation_logprobs(model, pairs, batch_size)
            assert torch.allclose(cached, full_forward_logprobs(model, pairs, 64), atol=1e-4), batch_size


def test_an_empty_continuation_is_refused_with_its_index(comments, kote_tokenizer):
    model = LabelOnlyMethod().build_model(tiny_backbone(), kote_tokenizer).eval()
    with pytest.raises(ValueError, match="pair 1 has an empty continuation"):
        continuation_logprobs(model, [([1, 2], [3]), ([1, 2], [])], 8)
