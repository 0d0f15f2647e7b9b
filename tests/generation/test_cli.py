"""``python generate.py`` as a user runs it: SIGKILL mid-run, exit codes, and the key in no file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from emoreason.data.reasoning import read_reasoning_jsonl
from emoreason.generation.run import generate
from emoreason.generation.store import read_entries
from tests.support.fake_openai import FakeOpenAI, ServerThread
from tests.support.generation import API_KEY, TINY_ROWS, base_overrides
from tests.support.project import REPO

MakeCfg = Callable[..., DictConfig]


def _command(tmp_path: Path, kote_dir: Path, server: ServerThread, *overrides: str) -> list[str]:
    base = base_overrides(tmp_path, kote_dir, server.base_url)
    return [sys.executable, "generate.py", *base, f"hydra.run.dir={tmp_path / 'run'}", *overrides]


def _run(command: list[str], key: str | None = API_KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_kill_9_mid_run_then_rerun_loses_nothing_and_repeats_no_stored_call(
    make_cfg: MakeCfg,
    fake: FakeOpenAI,
    fake_server: ServerThread,
    tiny_kote_dir: Path,
    tmp_path: Path,
    api_key: str,
) -> None:
    fake.latency_s = 0.1
    cache = tmp_path / "cache" / "cache.jsonl"
    command = _command(tmp_path, tiny_kote_dir, fake_server, "n=null", "generator.concurrency=2")
    process = subprocess.Popen(
        command, cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not (cache.exists() and len(cache.read_bytes().splitlines()) >= 10):
        assert process.poll() is None, "generate.py ended before it could be killed"
        assert time.monotonic() < deadline, "generate.py stored nothing within 60 s"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with cache.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "3f2a", "status": "ok", "id": "t00')  # what a kill mid-append leaves

    stored = read_entries(cache)
    stored_texts = {entry.record.text for entry in stored.values()}
    calls_before = len(fake.chats)
    assert 10 <= len(stored) < TINY_ROWS - 1

    summary = generate(make_cfg("n=null"))
    new_calls = fake.chat_texts()[calls_before:]
    assert stored_texts.isdisjoint(new_calls)  # nothing already stored is requested again
    assert len(new_calls) == TINY_ROWS - 1 - len(stored)  # and everything else exactly once
    assert summary["complete"] and summary["generated"] + summary["from_cache"] == TINY_ROWS
    assert len(read_reasoning_jsonl(tmp_path / "out" / "reasoning.jsonl")) == TINY_ROWS


def test_the_api_key_appears_in_no_file_written(
    fake: FakeOpenAI, fake_server: ServerThread, tiny_kote_dir: Path, tmp_path: Path
) -> None:
    fake.fault_for_text = {"테스트 댓글 t7번": "auth"}  # the key is revoked mid-run; the 401 echoes it
    run = _run(_command(tmp_path, tiny_kote_dir, fake_server, "n=null"))
    assert run.returncode == 2 and "rejected OPENAI_API_KEY" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"config.yaml", "generate.log", "cache.jsonl", "reasoning.jsonl", "summary.json"} <= names
    assert "rejected OPENAI_API_KEY" in (tmp_path / "run" / "generate.log").read_text(encoding="utf-8")
    assert [p for p in written if API_KEY.encode() in p.read_bytes()] == []
    assert API_KEY not in run.stdout + run.stderr


def test_bad_config_exits_2_with_a_message_naming_the_key(
    fake_server: ServerThread, tiny_kote_dir: Path, tmp_path: Path
) -> None:
    run = _run(_command(tmp_path, tiny_kote_dir, fake_server, "generator.concurrency=-1"))
    assert run.returncode == 2
    [line] = [line for line in run.stderr.splitlines() if line.startswith("generate.py: error: ")]
    assert "generator.concurrency must be a positive integer, got -1" in line
    assert "Traceback" not in run.stderr
    assert fake_server.fake.chats == []


def test_a_key_echoed_in_an_item_level_400_reaches_no_file_and_the_exit_says_how_to_retry(
    fake: FakeOpenAI, fake_server: ServerThread, tiny_kote_dir: Path, tmp_path: Path
) -> None:
    fake.fault_for_text = {"테스트 댓글 t7번": "echo_key"}
    run = _run(_command(tmp_path, tiny_kote_dir, fake_server, "n=null"))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "generator.retry_failed=true" in run.stdout + run.stderr  # the one line names the full key
    rejected = [e for e in read_entries(tmp_path / "cache" / "cache.jsonl").values() if e.status == "failed"]
    assert len(rejected) == 1 and "Authorization: Bearer ***" in str(rejected[0].detail)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p for p in written if API_KEY.encode() in p.read_bytes()] == []
    assert API_KEY not in run.stdout + run.stderr


def test_dry_run_exits_0_when_every_call_is_planned_and_1_when_the_cap_cannot_cover_them(
    fake_server: ServerThread, tiny_kote_dir: Path, tmp_path: Path
) -> None:
    planned = _run(_command(tmp_path, tiny_kote_dir, fake_server, "n=null", "dry_run=true"), key=None)
    assert planned.returncode == 0, planned.stderr
    short = _run(
        _command(tmp_path, tiny_kote_dir, fake_server, "n=null", "dry_run=true", "max_cost_usd=0.001")
    )
    assert short.returncode == 1 and "fit under max_cost_usd" in short.stdout + short.stderr
    assert fake_server.fake.chats == []


@pytest.mark.parametrize(
    ("override", "new"),
    [
        ("kote_dir=/k", "data.source.root"),
        ("split_scheme=official", "data.source.split_scheme"),
        ("++download=false", "data.source.download"),
    ],
)
def test_a_key_that_moved_to_the_data_source_exits_2_naming_the_new_key(
    override: str, new: str, tmp_path: Path
) -> None:
    run = _run([sys.executable, "generate.py", override, f"hydra.run.dir={tmp_path / 'run'}"], key=None)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and f"renamed to {new}" in run.stderr
    assert not (tmp_path / "run").exists()


def test_a_malformed_override_exits_2_in_one_line(
    fake_server: ServerThread, tiny_kote_dir: Path, tmp_path: Path
) -> None:
    run = _run(_command(tmp_path, tiny_kote_dir, fake_server, "n=[1"))
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_the_default_output_is_a_new_file_never_the_exported_reasoning_dataset(
    make_cfg: MakeCfg, fake: FakeOpenAI, api_key: str, tiny_kote_dir: Path, tmp_path: Path
) -> None:
    generate(make_cfg("n=20"))
    source = tmp_path / "out" / "reasoning.jsonl"  # exported as KOTE_REASONING_PATH, as the docs suggest
    before = source.read_bytes()
    env = {**os.environ, "KOTE_REASONING_PATH": str(source)}
    command = [
        sys.executable,
        "generate.py",
        "generator=cached",
        f"generator.source={source}",
        f"data.source.root={tiny_kote_dir}",
        "data.source.split_scheme=val_holdout",
        "data.source.holdout_size=10",
        "data.source.download=false",
        "data.source.verify_checksums=false",
        "n=5",
        "progress=false",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert len(read_reasoning_jsonl(tmp_path / "run" / "reasoning.jsonl")) == 5
    assert source.read_bytes() == before

    refused = subprocess.run(
        [*command, f"output={source}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2
    assert "is generator.source; writing it would destroy" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr and source.read_bytes() == before
