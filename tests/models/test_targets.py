"""Targets and parsing: what generative methods learn to write, token by token, and how it is read back."""

from __future__ import annotations

from dataclasses import replace

import pytest

from emoreason.labels import LABELS, NUM_LABELS
from emoreason.models.methods.generative import (
    ExplainThenPredictMethod,
    LabelOnlyMethod,
    MultitaskMethod,
    PredictThenExplainMethod,
)
from emoreason.models.targets import IGNORE, Pieces, labels_line, read_labels
from tests.support.reasoning import collate

METHODS = [LabelOnlyMethod, ExplainThenPredictMethod, PredictThenExplainMethod, MultitaskMethod]


@pytest.mark.parametrize("label", range(NUM_LABELS), ids=lambda i: LABELS[i])
def test_every_label_survives_render_tokenize_decode_parse(tokenizer, label):
    pieces = Pieces.of(tokenizer)
    ids = pieces.label_line_ids([label], LabelOnlyMethod.tasks[0])
    assert ids[-1] == tokenizer.eos_token_id
    assert read_labels(tokenizer.decode(ids, skip_special_tokens=True), 0) == ([label], True)


def test_all_44_labels_in_one_line_round_trip_in_canonical_order(tokenizer):
    reversed_ids = list(reversed(range(NUM_LABELS)))
    text = labels_line(reversed_ids)
    assert text.startswith("감정: 불평/불만, 환영/호의") and text.endswith("기쁨, 안심/신뢰")
    decoded = tokenizer.decode(Pieces.of(tokenizer).ids([text])[0])
    assert read_labels(decoded, 0) == (list(range(NUM_LABELS)), True)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("", 0, ([], False)),
        ("감정:", 0, ([], False)),
        ("감정: 기쁨, 행복함", 0, ([42], False)),  # names that match count; the output is still unparseable
        ("기쁨, 슬픔", 0, ([], False)),  # no label marker
        ("감정: 기뻐요", 0, ([], False)),  # a near miss is not guessed
        ("이유: 기쁘다.", 1, ([], False)),  # the label line never came
        ("이유: 기쁘다.\n감정: 기쁨, 슬픔\n", 0, ([], False)),  # labels on the wrong line
        ("감정: ' 기쁨 ', [슬픔]", 0, ([5, 42], True)),  # quotes and brackets are normalised away
        ("이유: 감정: 없음이라 한다.\n감정: 없음", 1, ([24], True)),
    ],
)
def test_junk_and_near_misses_are_unparseable(text, line, expected):
    assert read_labels(text, line) == expected


@pytest.mark.parametrize("method_cls", METHODS, ids=lambda c: c.name)
def test_loss_only_on_target_tokens_with_eos_kept(method_cls, rows, tokenizer):
    """Token by token: prompt positions are masked, every target position (EOS included) is learned."""
    method = method_cls(max_reasoning_tokens=30)
    two = rows[:2]
    columns = method.encode(two, tokenizer, max_length=16, train=True)
    pieces = Pieces.of(tokenizer)
    for t, task in enumerate(method.tasks):
        key = method._column(t, "input_ids")
        for r, row in enumerate(two):
            ids, labels = columns[key][r], columns[method._column(t, "labels")][r]
            prompt = [*pieces.ids([task.prompt(row.text)])[0][:16], *pieces.newline]
            assert ids[: len(prompt)] == prompt and labels[: len(prompt)] == [IGNORE] * len(prompt)
            assert labels[len(prompt) :] == ids[len(prompt) :]  # nothing in the target is masked
            assert ids[-1] == labels[-1] == tokenizer.eos_token_id == tokenizer.pad_token_id
            target = tokenizer.decode(ids[len(prompt) : -1])
            reasoning = tokenizer.decode(pieces.ids([f"이유: {row.reasoning}"])[0][:30])
            expected = {
                ("labels",): labels_line(row.labels),
                ("reasoning",): reasoning,
                ("reasoning", "labels"): f"{reasoning}\n{labels_line(row.labels)}",
                ("labels", "reasoning"): f"{labels_line(row.labels)}\n{reasoning}",
            }[task.segments]
            assert target == expected
    batch = collate(method, tokenizer, columns)
    labels, mask = batch["labels"], batch["attention_mask"]
    assert (labels[mask == 0] == IGNORE).all()  # left padding is masked too...
    assert (labels[mask == 1] == tokenizer.eos_token_id).sum() == 2  # ...but each row's closing EOS is not


def test_multitask_prompts_differ_only_by_task_prefix(rows, tokenizer):
    columns = MultitaskMethod().encode(rows[:1], tokenizer, max_length=16, train=True)
    label_prompt = tokenizer.decode(columns["input_ids"][0][:8])
    rationale_prompt = tokenizer.decode(columns["task1_input_ids"][0][:8])
    assert label_prompt.startswith("[감정] 댓글:") and rationale_prompt.startswith("[이유] 댓글:")


def test_evaluation_batches_hold_prompts_and_gold_labels_only(rows, tokenizer):
    method = PredictThenExplainMethod()
    columns = method.encode(rows[:3], tokenizer, max_length=16, train=False)
    assert set(columns) == {"input_ids", "attention_mask", "targets"}
    assert tokenizer.decode(columns["input_ids"][0]).endswith("\n")
    assert [int(t.sum()) for t in columns["targets"]] == [len(r.labels) for r in rows[:3]]


def test_reasoning_methods_refuse_rows_without_reasoning(rows, tokenizer):
    bare = [replace(r, reasoning=None) for r in rows[:3]]
    with pytest.raises(ValueError, match=r"3 training rows have no reasoning.*data=kote_reasoning"):
        ExplainThenPredictMethod().encode(bare, tokenizer, 16, train=True)
    assert LabelOnlyMethod().encode(bare, tokenizer, 16, train=True)["input_ids"]
