"""Issue 12, kind D: the API dialects a run must speak (reasoning models, servers without batch listing,
enqueued-token limits), online and in batch mode."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from emoreason.generation.client import request_body
from emoreason.generation.config import ChatGPTConfig
from emoreason.generation.errors import FatalAPIError
from emoreason.generation.run import generate
from tests.support.fake_openai import FakeOpenAI

MakeCfg = Callable[..., DictConfig]
BATCH = "generator.mode=batch"
O4 = ("generator.model=o4-mini", "++generator.prices={o4-mini:{input:1.1,output:4.4}}")


def _state(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "cache.jsonl.batch.json"


@pytest.mark.parametrize(
    ("model", "settings", "expected"),
    [
        ("gpt-4o-mini", {}, {"max_tokens": 512, "temperature": 0.7}),
        ("o4-mini", {"temperature": None}, {"max_completion_tokens": 512}),
        ("openai/gpt-5-mini", {"temperature": None}, {"max_completion_tokens": 512}),
        ("o3", {"token_limit_param": "max_tokens"}, {"max_tokens": 512, "temperature": 0.7}),
        (
            "llama3.1:8b",
            {"token_limit_param": "max_completion_tokens"},
            {"max_completion_tokens": 512, "temperature": 0.7},
        ),
    ],
)
def test_the_token_limit_name_and_temperature_follow_the_config(
    model: str, settings: dict, expected: dict
) -> None:
    body = request_body(ChatGPTConfig(model=model, **settings), [{"role": "user", "content": "x"}])
    assert {k: v for k, v in body.items() if k not in ("model", "messages")} == expected


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_a_reasoning_model_gets_what_it_accepts(
    mode: str, make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    fake.models, fake.reasoning_models = ("gpt-4o-mini", "o4-mini"), ("o4-mini",)
    summary = generate(make_cfg("n=6", *O4, "generator.temperature=null", f"generator.mode={mode}"))
    assert summary["complete"] and summary["generated"] == 6


def test_a_reasoning_model_refusing_temperature_stops_with_the_key_to_change(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str
) -> None:
    fake.models, fake.reasoning_models = ("gpt-4o-mini", "o4-mini"), ("o4-mini",)
    with pytest.raises(FatalAPIError, match=r"'temperature' does not support .*generator\.temperature=null"):
        generate(make_cfg("n=6", *O4))
    with pytest.raises(FatalAPIError, match=r"'max_tokens' is not supported.*generator\.token_limit_param"):
        generate(make_cfg("n=6", *O4, "generator.temperature=null", "generator.token_limit_param=max_tokens"))


def test_batch_mode_works_on_a_server_that_cannot_list_batches(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.list_batches = False
    fake.batch_delay_s = 0.3
    submitted = generate(make_cfg("n=6", BATCH, "generator.batch_wait=false"))
    assert submitted["waiting"] == {"batch_pending": 6} and fake.paths["/v1/batches/list"] == 0
    resumed = generate(make_cfg("n=6", BATCH))  # persisted state is enough to collect it
    assert resumed["complete"] and fake.paths["/v1/batches"] == 1 and fake.paths["/v1/batches/list"] == 0

    # The one case listing would serve (a crash between creating a batch and saving its id) only warns.
    generate(make_cfg("n=12", BATCH, "generator.batch_wait=false"))
    state = json.loads(_state(tmp_path).read_text(encoding="utf-8"))
    state["batch_id"] = None
    _state(tmp_path).write_text(json.dumps(state), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        after_crash = generate(make_cfg("n=12", BATCH))
    assert after_crash["complete"] and "cannot list batches" in caplog.text


def test_pending_work_is_split_under_the_token_ceiling_and_each_batch_is_resumable(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.batch_token_limit = 1600
    fake.batch_delay_s = 0.02
    runs = []
    for _ in range(10):  # batch_wait=false: each run collects the last batch and submits the next
        summary = generate(
            make_cfg("n=20", BATCH, "generator.batch_wait=false", "generator.batch_max_tokens=1500")
        )
        runs.append(summary)
        if summary["complete"]:
            break
    assert runs[-1]["complete"] and len(runs) >= 3
    assert all(b["status"] != "failed" for b in fake.batches.values())
    assert all(b["enqueued_tokens"] <= 1600 for b in fake.batches.values())
    assert len(fake.batches) >= 3
    assert len(fake.chat_texts(via_batch=True)) == 20  # each item paid exactly once, over all the batches


def test_a_batch_over_the_providers_queue_limit_names_the_key_that_splits_it(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.batch_token_limit = 1600
    with pytest.raises(FatalAPIError, match=r"token_limit_exceeded.*generator\.batch_max_tokens"):
        generate(make_cfg("n=20", BATCH, "generator.batch_max_tokens=null"))
    assert not _state(tmp_path).exists()
    summary = generate(make_cfg("n=20", BATCH, "generator.batch_max_tokens=1500"))
    assert summary["complete"] and len(fake.chat_texts(via_batch=True)) == 20


def test_a_refused_batch_leaves_no_orphaned_upload_and_no_state(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    fake.refuse_batches = True
    with pytest.raises(FatalAPIError, match="The Batch API is not available for this project"):
        generate(make_cfg("n=6", BATCH))
    assert fake.paths["/v1/files"] == 1 and fake.paths["/v1/files/delete"] == 1 and fake.files == {}
    assert not _state(tmp_path).exists()
