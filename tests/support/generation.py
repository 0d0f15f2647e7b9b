"""Constants and helpers shared by the generation tests and their conftest."""

from __future__ import annotations

import random
from pathlib import Path

from emoreason.labels import NUM_LABELS

API_KEY = "fake-key-9f8e7d6c5b4a-DO-NOT-LEAK"
TINY_ROWS = 80
DUPLICATE_IDS = ("t0078", "t0079")
"""Two rows of the tiny KOTE copy with the same text and labels: one call must serve both."""


def tiny_rows(prefix: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        labels = sorted(rng.sample(range(NUM_LABELS), rng.randint(1, 4)))
        text = f"테스트 댓글 {prefix}{i}번: 오늘 경기 {'진짜 ' * (i % 3)}대단했다 ㅋㅋ"
        lines.append(f"{prefix}{i:04d}\t{text}\t{','.join(map(str, labels))}\n")
    return lines


def base_overrides(tmp_path: Path, kote_dir: Path, base_url: str) -> list[str]:
    """Test-sized settings: tiny KOTE, files under tmp_path, short waits, no client-side rate limits."""
    return [
        f"data.source.root={kote_dir}",
        "data.source.split_scheme=val_holdout",
        "data.source.holdout_size=10",
        "data.source.download=false",
        "data.source.verify_checksums=false",
        f"cache_path={tmp_path / 'cache' / 'cache.jsonl'}",
        f"output={tmp_path / 'out' / 'reasoning.jsonl'}",
        f"summary_path={tmp_path / 'summary.json'}",
        "progress=false",
        f"generator.base_url={base_url}",
        "generator.backoff_base_s=0.01",
        "generator.backoff_max_s=0.05",
        "generator.requests_per_minute=null",
        "generator.tokens_per_minute=null",
        "generator.timeout_s=2.0",
        "generator.concurrency=4",
        "generator.batch_poll_s=0.02",
    ]
