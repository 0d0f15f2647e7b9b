"""``python evaluate.py`` through the shell and Hydra's real parser: every README example runs as printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from emoreason.data.kote import read_kote_tsv
from tests.support.project import REPO, write_kote_tsv

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

DATE, TIME = "2026-11-28", "15-02-11"
RUN_CKPT = f"outputs/{DATE}/{TIME}/checkpoints/last.ckpt"
COMMENTS = ["정말 고맙습니다", "아 진짜 어이가 없네"]


def readme_examples() -> list[str]:
    """The ``python evaluate.py`` lines of the README's command-line examples, as printed."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Command-line tools", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.startswith("python evaluate.py ")]


def run_cli(
    args: str | list[str], cwd: Path, kote_dir: Path | None, cache_dir: Path
) -> subprocess.CompletedProcess:
    """A shell line (quotes and comments as bash reads them) or an argv list, KOTE_DIR set only if given."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KOTE_DIR", "KOTE_REASONING_PATH", "HYDRA_FULL_ERROR")
    }
    env |= {"EMOREASON_CACHE": str(cache_dir), "PYTHONPATH": str(REPO / "src")}
    if kote_dir is not None:
        env["KOTE_DIR"] = str(kote_dir)
    if isinstance(args, str):  # bash, with `python` this interpreter and evaluate.py the repo's
        command = ["bash", "-c", f'python() {{ "{sys.executable}" "$@"; }}; cd "{cwd}"; {args}']
    else:
        command = [sys.executable, str(REPO / "evaluate.py"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def workdir(tmp_path, tiny_checkpoint, small_kote_dir) -> Path:
    """A folder laid out as the README assumes: a run's and a sweep job's checkpoint, comments, a TSV."""
    sweep_job = f"multirun/{DATE}/{TIME}/data=kote_plain,model=tiny_electra,seed=0/checkpoints/last.ckpt"
    for relative in (RUN_CKPT, sweep_job):
        (tmp_path / relative).parent.mkdir(parents=True)
        (tmp_path / relative).symlink_to(tiny_checkpoint)
    (tmp_path / "evaluate.py").symlink_to(REPO / "evaluate.py")
    (tmp_path / "conf").symlink_to(REPO / "conf")
    (tmp_path / "comments.txt").write_text("\n".join(COMMENTS) + "\n", encoding="utf-8")
    rows = read_kote_tsv(small_kote_dir / "test.tsv")[:25]
    write_kote_tsv(tmp_path / "mine.tsv", [(r.id, r.text, ",".join(map(str, r.labels))) for r in rows])
    return tmp_path


def only(paths: list[Path]) -> Path:
    assert len(paths) == 1, paths
    return paths[0]


@pytest.mark.parametrize("example", readme_examples())
def test_readme_example_runs_as_printed(example, workdir, small_kote_dir, cache_dir):
    """Lines with ``threshold=`` run with no KOTE files at all (KOTE_DIR unset, no data/kote): kind F."""
    line = (
        example.replace("<date>", DATE)
        .replace("<time>", TIME)
        .replace("ckpt_path=...", f"ckpt_path={RUN_CKPT}")
    )
    kote_dir = None if "threshold=" in line else small_kote_dir
    done = run_cli(line, workdir, kote_dir, cache_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    args = dict(arg.split("=", 1) for arg in shlex.split(line, comments=True)[2:])
    if "text" in args or "input_file" in args:
        tags = (
            workdir / args["output_file"]
            if "output_file" in args
            else only(list(workdir.rglob("tags.jsonl")))
        )
        texts = [json.loads(line)["text"] for line in tags.read_text(encoding="utf-8").splitlines()]
        assert texts == ([args["text"]] if "text" in args else COMMENTS)
        return
    metrics = json.loads(only(list(workdir.glob("outputs/*/*/metrics.json"))).read_text(encoding="utf-8"))
    assert metrics["checkpoint"] == args["ckpt_path"]
    assert metrics["test"]["rows"] == (25 if "data_file" in args else 600)
    assert metrics["threshold_source"] == ("given" if "threshold" in args else "tuned on val")


def test_a_comment_with_every_special_character_is_tagged_as_typed(workdir, cache_dir):
    comment = "진짜, 이게 = 말이 되냐 :) # 100% & 왜? 'ㅋㅋ' \"헐\" ${oc.env:HOME} \\${x} 끝\\"
    args = [f"ckpt_path={RUN_CKPT}", f"text={comment}", "threshold=0.3", "output_file=out/tags.jsonl"]
    done = run_cli(args, workdir, None, cache_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    (tagged,) = [
        json.loads(line) for line in (workdir / "out" / "tags.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert tagged["text"] == comment


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["text=", "threshold=0.3"], "text is empty"),
        (["input_file=cp949.txt", "threshold=0.3"], r"cp949\.txt: not UTF-8 .*iconv -f cp949 -t utf-8"),
    ],
)
def test_a_bad_comment_is_one_line_and_exit_status_2(workdir, cache_dir, args, message):
    (workdir / "cp949.txt").write_bytes("아 진짜 어이가 없네\n".encode("cp949"))
    done = run_cli([f"ckpt_path={RUN_CKPT}", *args], workdir, None, cache_dir)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert re.search(message, line) and "Traceback" not in done.stderr
