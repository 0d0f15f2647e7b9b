"""What a run prints: per-epoch lines and the summary block when stdout is a file, Rich in a terminal."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
from lightning.pytorch.callbacks import RichProgressBar

from emoreason.training.progress import PlainProgress, progress_bar, render_summary
from tests.support.project import REPO, SMALL_RUN

EPOCH_LINE = re.compile(
    r"epoch (\d+)/2 \| train/loss \d+\.\d{4} \| val/loss \d+\.\d{4} .*val/macro_f1 \d+\.\d{4} .*"
    r"\| monitor val/macro_f1_tuned \d+\.\d{4}( \(best \d+\.\d{4}\))? \| \d+\.\d s, \d+\.\d samples/s$"
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_rich_in_a_terminal_and_plain_lines_in_a_file():
    assert isinstance(progress_bar(refresh_rate=10, stream=Terminal()), RichProgressBar)
    assert isinstance(progress_bar(refresh_rate=10, stream=io.StringIO()), PlainProgress)


REPORT = {
    "threshold": 0.27,
    "test": {"tuned": {"macro_f1": 0.41234, "micro_f1": 0.5}, "at_0.5": {"macro_f1": 0.2, "micro_f1": 0.31}},
    "data_sizes": {"train": 1000, "val": 100, "test": 100},
    "wall_time_s": 20.0,
}


def test_summary_gives_both_thresholds_time_throughput_and_where_outputs_are():
    text = render_summary(REPORT, "outputs/x", epochs=3, wandb_line="W&B run: https://wandb.ai/a/b/runs/c")
    assert "test macro-F1 0.4123  micro-F1 0.5000  (threshold 0.27, tuned on val)" in text
    assert "test macro-F1 0.2000  micro-F1 0.3100  (threshold 0.50)" in text
    assert "wall time 20.0 s, 150.0 train rows/s" in text  # 1000 rows x 3 epochs / 20 s
    assert "outputs: outputs/x" in text
    assert "W&B run: https://wandb.ai/a/b/runs/c" in text


def test_summary_without_test_figures_says_so():
    text = render_summary({"wall_time_s": 1.0}, "out", epochs=0)
    assert "no test figures" in text and "macro-F1" not in text


@pytest.mark.slow
def test_a_smoke_run_piped_to_a_file_logs_the_config_each_epoch_and_the_summary(
    small_kote_dir, cache_dir, tmp_path
):
    run_dir, log_file = tmp_path / "run", tmp_path / "stdout.txt"
    overrides = [o for o in SMALL_RUN if o not in ("logger=csv", "~callbacks.progress_bar")]
    argv = [
        sys.executable,
        "train.py",
        *overrides,
        "logger=wandb",
        f"paths.kote_dir={small_kote_dir}",
        f"paths.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
        "debug=smoke",  # 2 epochs, val/test scoring limited to 3 batches
        "data.source.max_train_rows=64",
        "data.loader.eval_batch_size=20",
        "~callbacks.early_stopping",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "EMOREASON_PROGRESS_EVERY_S": "0"}  # a line per batch
    env.pop("WANDB_API_KEY", None)
    with log_file.open("w") as out:
        done = subprocess.run(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    stdout = log_file.read_text(encoding="utf-8")
    epochs = [m for line in stdout.splitlines() if (m := EPOCH_LINE.search(line))]
    assert [m.group(1) for m in epochs] == ["1", "2"], stdout
    train_log = (run_dir / "train.log").read_text(encoding="utf-8")
    assert len([line for line in train_log.splitlines() if EPOCH_LINE.search(line)]) == 2

    assert "config\n├── " in stdout and f"│   ├── kote_dir: {small_kote_dir}" in stdout  # the tree, at start
    assert stdout.index("config\n├── ") < stdout.index("epoch 1/2")

    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    tuned, fixed = metrics["test"]["tuned"], metrics["test"]["at_0.5"]
    summary = stdout[stdout.index("Summary") :]
    assert f"test macro-F1 {tuned['macro_f1']:.4f}  micro-F1 {tuned['micro_f1']:.4f}" in summary
    assert (
        f"test macro-F1 {fixed['macro_f1']:.4f}  micro-F1 {fixed['micro_f1']:.4f}  (threshold 0.50)"
        in summary
    )
    assert metrics["data_sizes"]["train"] == 64 and "final scoring reads 60 of 200 val rows" in stdout
    assert "test scoring: 20/60 rows (33%" in stdout and "test scoring: done, 60 rows in" in stdout
    assert re.search(r"wall time \d+\.\d s, \d+\.\d train rows/s", summary)
    assert f"outputs: {run_dir}" in summary
    offline = re.search(r"W&B offline run: (\S+) \(upload: wandb sync (\S+)\)", summary)
    assert offline and offline.group(1) == offline.group(2) and "offline-run-" in offline.group(1)
    assert (run_dir / "wandb").exists() and offline.group(1).startswith(str(run_dir / "wandb"))
