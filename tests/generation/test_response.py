"""The normalising parser: any body a server sends becomes an answer or a failure, never a crash."""

from __future__ import annotations

import json

import pytest

from emoreason.data.reasoning import Usage
from emoreason.generation.cost import Pricing
from emoreason.generation.response import (
    ChatResult,
    NotACompletion,
    encodable,
    judge,
    normalise_usage,
    parse_completion,
    strip_think,
)


def _body(
    content: object = "좋은 추론.", finish: object = "stop", usage: object = None, **extra: object
) -> dict:
    usage = {"prompt_tokens": 10, "completion_tokens": 5} if usage is None else usage
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
    return {"id": "x", "model": "served-name", "choices": [choice], "usage": usage, **extra}


def _parse(body: object, remove_think: bool = True) -> ChatResult:
    return parse_completion(
        body, requested_model="asked", pricing=Pricing(1.0, 2.0), remove_think=remove_think
    )


def test_missing_total_tokens_is_computed_and_extra_fields_are_ignored() -> None:
    result = _parse(_body(system_fingerprint=None, prompt_logprobs=[1], kv_transfer_params={"a": 1}))
    assert result.usage == Usage(10, 5, 15)
    assert result.cost_usd == pytest.approx((10 * 1.0 + 5 * 2.0) / 1e6)
    assert result.model == "served-name"


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": None}, Usage(3, 4, 7)),
        ({"prompt_tokens": 3.0, "completion_tokens": 4}, Usage(3, 4, 7)),
        ({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 9}, Usage(3, 4, 9)),
        ({"completion_tokens": 4}, None),
        ({"prompt_tokens": -1, "completion_tokens": 4}, None),
        ({"prompt_tokens": True, "completion_tokens": 4}, None),
        ("lots", None),
    ],
)
def test_usage_in_any_shape(usage: object, expected: Usage | None) -> None:
    assert normalise_usage(usage) == expected


def test_no_usage_means_unknown_cost_not_zero() -> None:
    body = _body()
    del body["usage"]
    result = _parse(body)
    assert result.usage is None and result.cost_usd is None


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><body>Please sign in</body></html>",
        "",
        b"\xff\xfe not json",
        {"error": {"message": "upstream", "code": 502}},
        {"object": "list", "data": []},
        {"choices": []},
        {"choices": ["not an object"]},
        [1, 2, 3],
        None,
    ],
)
def test_a_body_that_is_no_completion_raises_not_a_completion_only(body: object) -> None:
    with pytest.raises(NotACompletion):
        _parse(body)


def test_a_lone_surrogate_becomes_encodable_and_a_split_pair_is_joined() -> None:
    raw = '{"choices": [{"message": {"content": "좋다 \\ud83d"}, "finish_reason": "stop"}]}'
    content = _parse(raw).content
    assert content == "좋다 \ufffd"
    content.encode("utf-8")  # what the cache append needs
    assert encodable("a\ud83d\ude00b") == "a😀b"
    assert encodable("plain") == "plain"


def test_think_blocks_are_cut_and_counted_unless_disabled() -> None:
    text = "<think>labels say joy</think>\n결론: 기쁨이 드러난다."
    result = _parse(_body(text))
    assert result.content == "결론: 기쁨이 드러난다." and result.think_stripped
    assert _parse(_body(text), remove_think=False).content == text
    assert strip_think("<think>never closed because the answer was cut") == ("", True)
    assert strip_think("template opened it</think> 답") == ("답", True)
    assert strip_think("no tags") == ("no tags", False)


@pytest.mark.parametrize(
    ("content", "finish", "completion", "kind", "reason"),
    [
        ("답", "stop", 5, "ok", None),
        ("답", "eos", 5, "ok", None),
        ("답", "end_turn", 5, "ok", None),
        ("답", "STOP_SEQUENCE", 5, "ok", None),
        ("답", "length", 5, "recorded", "truncated"),
        ("답", "max_tokens", 5, "recorded", "truncated"),
        ("", "content_filter", 0, "recorded", "content_filter"),
        ("답", "safety", 5, "recorded", "content_filter"),
        ("답이 25자에서 끊겼", "network_error", 10, "transient", "finish_network_error"),
        ("답", "error", 5, "transient", "finish_error"),
        ("답", "abort", 5, "transient", "finish_abort"),
        ("", "stop", 0, "transient", "no_content"),
        (None, None, 0, "transient", "no_content"),
        ("", "stop", 7, "recorded", "empty"),
        ("답", "tool_calls", 5, "recorded", "unknown_finish_reason"),
        ("답", None, 5, "recorded", "unknown_finish_reason"),
    ],
)
def test_the_finish_reason_table(
    content: str | None, finish: str | None, completion: int, kind: str, reason: str | None
) -> None:
    verdict = judge(_parse(_body(content, finish, {"prompt_tokens": 1, "completion_tokens": completion})))
    assert (verdict.kind, verdict.reason) == (kind, reason)
    if reason == "unknown_finish_reason":
        assert str(finish) in str(verdict.detail)  # recorded with its value


def test_a_refusal_is_recorded_with_its_text() -> None:
    body = _body(None)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."
    verdict = judge(_parse(json.dumps(body)))
    assert (verdict.kind, verdict.reason, verdict.detail) == (
        "recorded",
        "refusal",
        "I can't help with that.",
    )
