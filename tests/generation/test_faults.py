"""The one classifier: every provider's dialect lands in the right class, and no message keeps a key."""

from __future__ import annotations

import random

import pytest

from emoreason.generation.faults import FINISH_REASONS, Redactor, classify_error, error_object
from emoreason.generation.ratelimit import CircuitBreaker
from tests.support.project import REPO

OTHER_KEY = "sk-" + "other-not-a-real-key-0"
KEY = "sk-" + "proj-not-a-real-key-00000"  # built at run time: no secret scanner takes it for a key


def _classify(status: int | None, error: object) -> tuple[str, str, str]:
    failure = classify_error(status, error, where="http://srv/v1", model="m", redact=Redactor(KEY))  # type: ignore[arg-type]
    return failure.kind, failure.reason, failure.message


@pytest.mark.parametrize(
    ("status", "error", "kind", "reason"),
    [
        # Azure OpenAI: one comment flagged by the content filter is that item's failure, not the run's.
        (
            400,
            {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                "management policy.",
                "param": "prompt",
                "code": "content_filter",
                "innererror": {"code": "ResponsibleAIPolicyViolation"},
            },
            "item",
            "content_filter",
        ),
        (
            400,
            {"message": "x", "code": "context_length_exceeded", "param": "messages"},
            "item",
            "bad_request",
        ),
        # vLLM: the context error only in words, in its top-level error object.
        (
            400,
            {"object": "error", "message": "This model's maximum context length is 4096 tokens", "code": 400},
            "item",
            "bad_request",
        ),
        # Ollama: a string error for an unknown model.
        (404, {"message": "model 'llama9' not found, try pulling it first"}, "fatal", "unknown_model"),
        # A gateway's 200 with only an error object carrying the upstream status.
        (200, {"message": "upstream provider unavailable", "code": 502}, "transient", "server_error"),
        (200, {"message": "upstream said no", "code": "429"}, "transient", "rate_limited"),
        (200, {"message": "something odd"}, "transient", "error_body"),
        (529, {"message": "Overloaded"}, "transient", "server_error"),
        (
            429,
            {"message": "quota", "type": "insufficient_quota", "code": None},
            "fatal",
            "insufficient_quota",
        ),
        (
            400,
            {"message": "Unsupported parameter: 'max_tokens'", "code": "unsupported_parameter"},
            "fatal",
            "rejected",
        ),
        (401, "Unauthorized", "fatal", "auth"),
        (502, "<html><title>502 Bad Gateway</title></html>", "transient", "server_error"),
        (
            None,
            {"code": "batch_expired", "message": "This request could not be executed"},
            "transient",
            "error_body",
        ),
    ],
)
def test_each_dialect_lands_in_its_class(status: int | None, error: object, kind: str, reason: str) -> None:
    assert _classify(status, error)[:2] == (kind, reason)


def test_messages_keep_status_and_body_and_say_what_to_do() -> None:
    kind, _, message = _classify(
        400, {"message": "Unsupported value: 'temperature'", "code": "unsupported_value"}
    )
    assert kind == "fatal" and "400: Unsupported value: 'temperature'" in message
    assert "generator.temperature=null" in message and "http://srv/v1" in message
    assert (
        "502: <html><title>502 Bad Gateway</title></html>"
        in _classify(502, "<html><title>502 Bad Gateway</title></html>")[2]
    )


@pytest.mark.parametrize(
    "echo",
    [
        f"Incorrect API key provided: {KEY}.",
        "headers: Authorization: Bearer " + OTHER_KEY,
        'request {"api_key": "abc123secret"}',
    ],
)
def test_every_message_is_redacted(echo: str) -> None:
    message = _classify(400, {"message": echo, "code": "context_length_exceeded"})[2]
    assert KEY not in message and OTHER_KEY not in message and "abc123secret" not in message
    assert "***" in message


def test_error_object_reads_every_shape_and_ignores_completions() -> None:
    assert error_object({"error": {"message": "m"}}) == {"message": "m"}
    assert error_object({"error": "model not found"}) == {"message": "model not found"}
    assert error_object({"object": "error", "message": "m", "code": 400})["code"] == 400  # type: ignore[index]
    assert error_object({"choices": [], "error": None}) is None


def test_the_finish_reason_table_has_every_documented_value() -> None:
    documented = (REPO / "docs" / "generation.md").read_text(encoding="utf-8")
    for reason, outcome in FINISH_REASONS.items():
        assert f"`{reason}`" in documented, reason
        assert outcome in {"ok", "truncated", "filtered", "transient"}


def test_the_breaker_trips_on_a_dead_server_and_never_on_a_ten_percent_fault_rate() -> None:
    dead = CircuitBreaker(window=20, threshold=0.9)
    assert [dead.record("connection") for _ in range(20)] == [False] * 19 + [True]

    rng = random.Random(0)
    flaky = CircuitBreaker(window=20, threshold=0.9)
    reasons = ("rate_limited", "server_error", None)
    trips = [flaky.record(rng.choice(reasons[:2]) if rng.random() < 0.1 else None) for _ in range(200_000)]
    assert not any(trips)

    mixed = CircuitBreaker(window=20, threshold=0.9)  # all failing, but not the same way: 10 + 10
    assert not any(mixed.record(("timeout", "server_error")[i % 2]) for i in range(100))
