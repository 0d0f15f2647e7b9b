"""The GPU benchmark's synthetic comments are as long as KOTE's, so its sequence lengths mean something."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_polyglot.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("gpu_polyglot", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_comment_lengths_match_kote():
    lengths = [len(c) for c in load_benchmark().synthetic_comments(3000)]
    assert abs(np.median(lengths) - 43) <= 4  # KOTE: median 43 characters
    assert abs(np.percentile(lengths, 95) - 140) <= 15  # KOTE: p95 140 characters


def test_synthetic_comments_are_hangul_and_deterministic():
    bench = load_benchmark()
    first = bench.synthetic_comments(50, seed=1)
    assert first == bench.synthetic_comments(50, seed=1) != bench.synthetic_comments(50, seed=2)
    text = "".join(first).replace(" ", "")
    assert sum("\uac00" <= ch <= "\ud7a3" for ch in text) / len(text) > 0.9
