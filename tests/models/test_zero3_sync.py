"""Under ZeRO-3 every forward is a collective: ranks that generate or score unequal amounts must not hang."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from emoreason.models.tokenizers import train_tokenizer
from tests.support.project import REPO, shared_reasoning_path
from tests.support.reasoning import reasoning_rows

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

WORKER = Path(__file__).with_name("zero3_sync_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_with_unequal_work_stay_in_step(tmp_path):
    rows = reasoning_rows(str(shared_reasoning_path()), 200)
    tokenizer = train_tokenizer([t for r in rows for t in (r.text, r.reasoning or "")], "bpe", 1000, None)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, str(WORKER), str(tmp_path / "tokenizer")]
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    workers = [
        subprocess.Popen([*command, str(tmp_path / f"rank{r}.json")], env={**env, "RANK": str(r)}, **output)
        for r in range(2)
    ]
    try:
        logs = [w.communicate(timeout=120)[0] for w in workers]
    except subprocess.TimeoutExpired:
        for w in workers:
            w.kill()
        pytest.fail("the ranks hung: one ran fewer forwards (collectives) than the other")
    assert [w.returncode for w in workers] == [0, 0], logs
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert rank1["generated_tokens"] == [1] and max(rank0["generated_tokens"]) > 1  # unequal generation
    assert rank0["scores_match"] and rank1["scores_match"]  # idle passes change no score
