"""Builders of fake sweep folders, a reader of W&B's offline run files, and the multirun launcher."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from wandb.proto import wandb_internal_pb2

from emoreason.labels import LABELS
from tests.support.project import REPO

EXCLUDE_KEYS = ["sweep", "logger", "paths.kote_dir"]


def fake_metrics(seed: int, macro: float, *, micro: float = 0.5, val_macro: float = 0.3) -> dict[str, Any]:
    """A metrics.json payload with the figures the report reads."""

    def figures(value: float) -> dict[str, Any]:
        return {
            "macro_f1": value,
            "micro_f1": micro,
            "weighted_f1": value + 0.1,
            "per_label_f1": dict.fromkeys(LABELS, value),
        }

    return {
        "model": "tiny-electra",
        "method": "classifier",
        "seed": seed,
        "threshold": 0.3,
        "val": {"rows": 10, "tuned": figures(val_macro), "at_0.5": figures(val_macro / 2)},
        "test": {"rows": 10, "tuned": figures(macro), "at_0.5": figures(macro / 2)},
    }


def fake_job(
    sweep_dir: Path,
    num: int,
    overrides: Sequence[str],
    *,
    data: str = "kote_plain",
    metrics: dict[str, Any] | None = None,
    failure: dict[str, Any] | None = None,
) -> Path:
    """A job folder as train.py leaves it: Hydra's record plus metrics.json or failure.json (or neither)."""
    job = sweep_dir / ",".join(sorted(o for o in overrides if not o.startswith("+sweep")))
    hydra = {
        "hydra": {
            "job": {"num": num, "config": {"override_dirname": {"exclude_keys": EXCLUDE_KEYS}}},
            "overrides": {"task": list(overrides)},
            "runtime": {
                "choices": {
                    "data": data,
                    "model": "tiny_electra",
                    "method": "classifier",
                    "hydra/launcher": "basic",
                }
            },
        }
    }
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(hydra), job / ".hydra" / "hydra.yaml")
    for name, payload in (("metrics.json", metrics), ("failure.json", failure)):
        if payload is not None:
            (job / name).write_text(json.dumps(payload), encoding="utf-8")
    return job


def fake_predictions(job: Path, ids: Sequence[str], gold: Any, predicted: Any) -> Path:
    """A ``test_predictions.jsonl`` from ``(n, 44)`` 0/1 gold and predicted arrays, as train.py writes it."""
    lines = []
    for rid, g, p in zip(ids, gold, predicted, strict=True):
        names = {
            key: [LABELS[j] for j in range(len(LABELS)) if row[j]]
            for key, row in (("gold", g), ("predicted", p))
        }
        record = {"id": rid, "text": f"댓글 {rid}", **names}
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    path = job / "test_predictions.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def wandb_records(run_file: Path) -> Iterator[wandb_internal_pb2.Record]:
    """Records of an offline run's ``run-<id>.wandb`` (LevelDB-style log: 32 KiB blocks of chunks).

    W&B 0.31 keeps the run's group, job type, name and summary only in this file when offline (no
    wandb-summary.json), so tests read it the way ``wandb sync`` does.
    """
    data, block, pos, chunk = run_file.read_bytes(), 32768, 7, b""  # 7: the ":W&B" file header
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            yield record
            chunk = b""


def wandb_exit_code(run_dir: Path) -> int:
    """The exit code the one offline W&B run under ``run_dir`` ended with (what W&B shows as its state)."""
    (run_file,) = run_dir.rglob("offline-run-*/run-*.wandb")
    (code,) = [record.exit.exit_code for record in wandb_records(run_file) if record.HasField("exit")]
    return code


def wandb_run(job_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The one offline W&B run of a job folder: its run record and its final summary."""
    files = sorted((job_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    run, summary = None, {}
    for record in wandb_records(files[0]):
        if record.HasField("run"):
            run = record.run
        elif record.HasField("summary"):
            for item in record.summary.update:
                summary["/".join(item.nested_key) or item.key] = json.loads(item.value_json)
    return run, summary


def run_train(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python train.py *args`` from the repository root, as a user runs it; W&B offline, no hub access."""
    base = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=REPO,
        env={**base, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
