"""Issue 12, kinds A–C, end to end against the fake server: every response normalised once, every fault in its
class, every wait bounded. For each: nothing paid is lost, nothing is paid twice on rerun, the run ends in
bounded time, and the message names the cause and the fix."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from emoreason.data.reasoning import read_reasoning_jsonl
from emoreason.generation.cached import CachedGenerator, load_source
from emoreason.generation.errors import FatalAPIError, RerunLaterError
from emoreason.generation.run import generate
from emoreason.generation.store import read_entries
from tests.support.fake_openai import FakeOpenAI
from tests.support.generation import TINY_ROWS

MakeCfg = Callable[..., DictConfig]
CALLS = TINY_ROWS - 1  # n=null: every row of the tiny copy; the duplicate pair shares a call
BATCH = "generator.mode=batch"


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "cache.jsonl"


def _output(tmp_path: Path) -> Path:
    return tmp_path / "out" / "reasoning.jsonl"


def _summary(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))


def _every_call(fake: FakeOpenAI, fault: str) -> None:
    fake.fault_rate, fake.random_faults = 1.0, (fault,)


# -- A: one normalising parser ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_usage_without_total_tokens_is_completed_and_every_reader_accepts_the_files(
    mode: str, make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.usage_style = "no_total"
    first = generate(make_cfg("n=6", f"generator.mode={mode}"))
    assert first["complete"] and first["generated"] == 6
    records = read_reasoning_jsonl(_output(tmp_path))  # what data=kote_reasoning reads
    assert all(
        r.usage and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens for r in records
    )
    assert len(load_source(CachedGenerator(source=str(_cache(tmp_path))))) == 6  # what generator=cached reads

    second = generate(make_cfg("n=6", f"generator.mode={mode}"))
    assert second["requests"] == 0 and second["from_cache"] == 6 and second["complete"]


def test_a_cache_written_with_total_tokens_null_still_opens_and_nothing_is_paid_again(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    generate(make_cfg("n=6"))
    lines = [json.loads(line) for line in _cache(tmp_path).read_text(encoding="utf-8").splitlines()]
    for line in lines:
        line["usage"]["total_tokens"] = None  # what the previous writer produced
    _cache(tmp_path).write_text(
        "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in lines), encoding="utf-8"
    )
    again = generate(make_cfg("n=6"))
    assert again["requests"] == 0 and again["complete"] and len(fake.chats) == 6
    assert all(r.usage and r.usage.total_tokens for r in read_reasoning_jsonl(_output(tmp_path)))


def test_an_html_sign_in_page_is_a_transient_failure_of_that_call(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    fake.inject("html")
    summary = generate(make_cfg("n=6"))
    assert summary["complete"] and summary["retries"] == {"unreadable_response": 1}
    assert len(fake.chats) == 7  # the failed call once more, nothing else


def test_an_item_answered_only_by_html_is_left_for_the_rerun_and_the_others_are_kept(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.fault_for_text = {"테스트 댓글 t3번": "html"}
    first = generate(make_cfg("n=null", "generator.max_retries=1"))
    assert first["failed"] == {"unreadable_response": 1} and first["completed"] == TINY_ROWS - 1
    assert "Please sign in" in first["last_error"] and "rerun the same command" in first["next_step"]
    assert len(read_entries(_cache(tmp_path))) == CALLS - 1

    fake.fault_for_text = {}
    second = generate(make_cfg("n=null"))
    assert second["requests"] == 1 and second["complete"]  # only the missing one is paid


def test_a_lone_surrogate_is_stored_encodable_and_not_paid_again(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.fault_for_text = {"테스트 댓글 t3번": "surrogate"}
    first = generate(make_cfg("n=null"))
    assert first["complete"]
    record = next(r for r in read_reasoning_jsonl(_output(tmp_path)) if r.id == "t0003")
    assert record.reasoning.endswith("\ufffd")
    assert generate(make_cfg("n=null"))["requests"] == 0 and len(fake.chats) == CALLS


def test_batch_lines_are_read_by_the_same_parser_and_every_paid_line_is_merged(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.fault_for_text = {
        "테스트 댓글 t3번": "eos",
        "테스트 댓글 t5번": "html",
        "테스트 댓글 t7번": "surrogate",
    }
    first = generate(make_cfg("n=null", BATCH))
    assert first["failed"] == {"batch_unreadable_response": 1} and first["completed"] == TINY_ROWS - 1
    assert len(read_entries(_cache(tmp_path))) == CALLS - 1  # eos and the lines after it: all merged
    assert not (tmp_path / "cache" / "cache.jsonl.batch.json").exists()

    fake.fault_for_text = {}
    second = generate(make_cfg("n=null", BATCH))
    assert second["complete"] and len(fake.chat_texts(via_batch=True)) == CALLS + 1


# -- B: one classifier -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_azure_content_filter_is_recorded_for_that_item_and_the_run_goes_on(
    mode: str, make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    fake.fault_for_text = {"테스트 댓글 t3번": "content_filter"}
    first = generate(make_cfg("n=null", "generator.concurrency=2", f"generator.mode={mode}"))
    assert first["failed"] == {"content_filter": 1} and first["completed"] == TINY_ROWS - 1
    assert "generator.retry_failed=true" in first["next_step"]
    calls = len(fake.chats)
    assert calls == CALLS
    again = generate(make_cfg("n=null", "generator.concurrency=2", f"generator.mode={mode}"))
    assert again["requests"] == 0 and len(fake.chats) == calls  # recorded: not paid again


def test_a_gateway_200_with_an_error_object_is_retried_never_stored_and_its_message_shown(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.fault_for_text = {"테스트 댓글 t3번": "gateway_error"}
    first = generate(make_cfg("n=null", "generator.max_retries=2"))
    assert first["failed"] == {"server_error": 1} and first["recorded_failures"] == 0
    assert "upstream provider unavailable" in first["last_error"]
    assert sum(1 for t in fake.chat_texts() if t.startswith("테스트 댓글 t3번")) == 3
    assert all(e.status == "ok" for e in read_entries(_cache(tmp_path)).values())

    fake.fault_for_text = {}
    second = generate(make_cfg("n=null"))
    assert second["requests"] == 1 and second["complete"]


def test_a_reply_cut_by_network_error_is_never_saved_as_reasoning(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.inject("network_error")
    summary = generate(make_cfg("n=6"))
    assert summary["complete"] and summary["retries"] == {"finish_network_error": 1}
    assert all(len(r.reasoning) > 25 for r in read_reasoning_jsonl(_output(tmp_path)))
    stored = sum(e.cost_usd or 0.0 for e in read_entries(_cache(tmp_path)).values())
    assert summary["cost_usd"] > stored  # the cut reply was billed: its cost is counted, not lost

    fake.fault_for_text = {"테스트 댓글 t3번": "network_error"}
    cut = generate(make_cfg("n=null", "generator.max_retries=1", f"cache_path={tmp_path / 'other.jsonl'}"))
    assert not cut["complete"] and cut["failed"] == {"finish_network_error": 1}
    assert "t0003" not in {r.id for r in read_reasoning_jsonl(_output(tmp_path))}


@pytest.mark.parametrize(
    ("fault", "message"),
    [("unsupported_parameter", "Unsupported parameter"), ("quota", "insufficient_quota")],
)
@pytest.mark.parametrize("mode", ["online", "batch"])
def test_settings_or_quota_refused_on_every_call_stop_at_once_with_the_servers_message(
    fault: str, message: str, mode: str, make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    _every_call(fake, fault)
    with pytest.raises(FatalAPIError, match=message) as info:
        generate(make_cfg("n=20", f"generator.mode={mode}"))
    assert info.type.exit_code == 2
    assert len(fake.chats) <= (20 if mode == "batch" else 4)  # online: only the calls already in flight
    assert not (tmp_path / "cache" / "cache.jsonl.batch.json").exists()  # nothing left to resume
    assert _summary(tmp_path)["completed"] == 0


# -- C: bounded waits ------------------------------------------------------------------------------------


def test_a_retry_after_of_an_hour_stops_at_once_saying_rerun_later(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    _every_call(fake, "429_long")
    started = time.monotonic()
    with pytest.raises(RerunLaterError, match=r"asks to wait 60 min .*rerun later") as info:
        generate(make_cfg("n=6"))
    assert time.monotonic() - started < 10 and info.value.exit_code == 1
    assert _summary(tmp_path)["not_started"]["aborted"] >= 2


def test_a_dead_port_stops_in_seconds_naming_base_url(make_cfg: MakeCfg, api_key: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    with pytest.raises(FatalAPIError, match=r"failed the same way \(connection\).*generator\.base_url"):
        generate(
            make_cfg(
                "n=6",
                f"generator.base_url=http://127.0.0.1:{port}/v1",
                "generator.backoff_base_s=0.05",
                "generator.backoff_max_s=0.2",
            )
        )
    assert time.monotonic() - started < 20


def test_a_502_on_every_call_trips_the_breaker_showing_status_and_body(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    _every_call(fake, "502")
    with pytest.raises(FatalAPIError, match=r"last error: 502: <html><head><title>502 Bad Gateway"):
        generate(make_cfg("n=6"))
    assert 20 <= len(fake.chats) <= 24  # the window, plus the calls in flight when it tripped


def test_a_few_calls_failing_all_along_end_with_the_last_status_and_body(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    _every_call(fake, "502")
    summary = generate(make_cfg("n=1", "generator.max_retries=2"))  # 3 attempts: below the breaker's window
    assert not summary["complete"] and "502 Bad Gateway" in summary["last_error"]
    assert "502 Bad Gateway" in summary["next_step"]


def test_a_ten_percent_fault_rate_never_trips_the_breaker(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    fake.fault_rate, fake.random_faults = 0.1, ("429", "500", "503", "502", "html", "gateway_error")
    summary = generate(make_cfg("n=null", "generator.max_retries=8"))
    assert summary["complete"] and sum(summary["retries"].values()) > 0
