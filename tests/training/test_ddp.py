"""Two CPU processes (gloo DDP) end to end: sharded batches, synced metrics, files from rank 0 only."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.support.project import REPO, SMALL_RUN

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def test_two_process_ddp_run(tmp_path, small_kote_dir, cache_dir):
    out = tmp_path / "ddp"
    overrides = [
        *SMALL_RUN,
        f"paths.kote_dir={small_kote_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={out}",
        "strategy=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "data.source.max_train_rows=128",
        "data.loader.eval_batch_size=32",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "train.py", *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # 128 rows, batch 32, 2 ranks: each rank takes 2 of the 4 batches, so one epoch is 2 optimizer steps.
    assert report["global_step"] == 2
    # Files come from rank 0 only: one metrics.json, one CSV log, one last.ckpt.
    assert sorted(p.name for p in out.rglob("metrics.json")) == ["metrics.json"]
    assert len(list(out.rglob("metrics.csv"))) == 1 and len(list(out.rglob("last.ckpt"))) == 1

    # The logged val macro-F1 (threshold 0.5) was computed over both ranks' halves of val: it equals the
    # single-process figure on the whole val split from the same final weights.
    rows = list(csv.DictReader((out / "csv" / "metrics.csv").open(encoding="utf-8")))
    logged = [float(r["val/macro_f1"]) for r in rows if r.get("val/macro_f1")]
    assert logged[-1] == pytest.approx(report["val"]["at_0.5"]["macro_f1"], abs=1e-6)
