"""The suite stops once, at its start, when its data is missing; the reasoning path follows KOTE_DIR."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.support.project import REPO, shared_kote_dir, shared_reasoning_path

FAST_TESTS = "tests/test_config_tree.py"  # needs no data itself: only the session check is under test


def pytest_in(env_changes: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in env_changes}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", FAST_TESTS]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)


def test_missing_kote_stops_the_session_at_once_with_one_message(tmp_path):
    done = pytest_in({"KOTE_DIR": str(tmp_path / "nowhere"), "KOTE_REASONING_PATH": None})
    output = done.stdout + done.stderr
    assert done.returncode == 4
    assert output.count("test data missing: KOTE data not found at") == 1
    assert "set KOTE_DIR" in output and " passed" not in output


def test_reasoning_is_read_beside_kote_dir_when_its_variable_is_unset(tmp_path):
    kote = tmp_path / "data" / "kote"
    kote.mkdir(parents=True)
    for split in ("val", "test"):
        shutil.copy(shared_kote_dir() / f"{split}.tsv", kote / f"{split}.tsv")
    done = pytest_in({"KOTE_DIR": str(kote), "KOTE_REASONING_PATH": None})
    assert done.returncode == 4 and "reasoning sample not found at" in done.stdout + done.stderr
    (tmp_path / "data" / "kote_reasoning").mkdir()
    shutil.copy(shared_reasoning_path(), tmp_path / "data" / "kote_reasoning" / "reasoning.jsonl")
    done = pytest_in({"KOTE_DIR": str(kote), "KOTE_REASONING_PATH": None})
    assert done.returncode == 0, done.stdout[-2000:]
