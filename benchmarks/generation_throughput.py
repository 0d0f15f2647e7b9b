"""Reasoning generation throughput and cost against the local fake OpenAI server (docs/benchmarks.md).

    KOTE_DIR=../shared/data/kote python benchmarks/generation_throughput.py

1. items/s of ``generate()`` (online, concurrency 32) on 2,000 comments with 200 ms server latency, against a
   plain sequential loop of ``chat.completions.create`` with the same client settings (on fewer items: its
   rate is one item per round trip, whatever the count);
2. the same run with 10% of requests failing (429 with ``retry-after-ms: 200``, 500, 503, in equal shares);
3. the cost of 10,000 items for the default model, standard and Batch API prices, from the usage measured
   over the whole pipeline while the server answers with the shared sample's real reasoning texts.

The server runs in its own process (``tests/generation/fake_openai.py``), so it does not share the client's
core. Its token counts are ``ceil(UTF-8 bytes / 4)`` per text plus 3 per message and 3 per reply, not
OpenAI's tokenizer (not installable offline here): the cost figures carry that approximation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from openai import AsyncOpenAI

from emoreason.generation.config import ChatGPTConfig, load_config
from emoreason.generation.items import build_items
from emoreason.generation.prompt import PromptTemplate
from emoreason.generation.run import generate, sample_rows

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
KEY = "sk-benchmark-local"
STANDARD_10K_ITEMS = 10_000


class FakeServer:
    """``fake_openai.py`` in a subprocess; ``base_url`` once it listens."""

    def __init__(self, *args: str) -> None:
        script = REPO / "tests" / "generation" / "fake_openai.py"
        command = [sys.executable, str(script), "--api-key", KEY, *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{line.split()[1]}/v1"

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def config(kote_dir: Path, workdir: Path, base_url: str, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(
            config_name="generate",
            overrides=[
                f"kote_dir={kote_dir}",
                "split_scheme=val_holdout",
                "download=false",
                f"cache_path={workdir / 'cache.jsonl'}",
                f"output={workdir / 'reasoning.jsonl'}",
                "summary_path=null",
                "progress=false",
                f"generator.base_url={base_url}",
                "generator.requests_per_minute=null",
                "generator.tokens_per_minute=null",
                "generator.max_retries=10",
                *overrides,
            ],
        )


def timed_generate(cfg: DictConfig) -> tuple[float, dict[str, Any]]:
    """items/s of one full ``generate()`` (sampling, prompts, calls, cache, dataset), from an empty cache."""
    start = time.perf_counter()
    summary = generate(cfg)
    elapsed = time.perf_counter() - start
    if not summary["complete"]:
        raise RuntimeError(f"run incomplete: {summary}")
    return summary["items"] / elapsed, summary


async def sequential_rate(cfg: DictConfig, count: int) -> float:
    """items/s of a plain loop, one awaited call after another, with the client ``generate()`` builds."""
    settings = load_config(cfg)
    g = settings.generator
    assert isinstance(g, ChatGPTConfig)
    items = build_items(
        sample_rows(settings)[:count],
        PromptTemplate.from_config(settings.prompt),
        model=g.model,
        temperature=g.temperature,
    )
    client = AsyncOpenAI(api_key=KEY, base_url=g.base_url, max_retries=0, timeout=g.timeout_s)
    start = time.perf_counter()
    for item in items:
        await client.chat.completions.create(
            model=g.model,
            messages=item.messages,  # type: ignore[arg-type]
            temperature=g.temperature,
            max_tokens=g.max_tokens,
        )
    elapsed = time.perf_counter() - start
    await client.close()
    return len(items) / elapsed


def median_runs(runs: int, kote_dir: Path, base_url: str, *overrides: str) -> tuple[float, list[float]]:
    rates = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as workdir:
            rate, _ = timed_generate(config(kote_dir, Path(workdir), base_url, *overrides))
            rates.append(rate)
    return statistics.median(rates), rates


def cost_of_10k(kote_dir: Path, reasoning: Path, prices: dict[str, float], discount: float) -> dict[str, Any]:
    """Mean usage per item over the shared sample's comments, answered with their real reasoning."""
    shared_texts = {json.loads(line)["text"] for line in reasoning.read_text(encoding="utf-8").splitlines()}
    with FakeServer("--replies", str(reasoning)) as server, tempfile.TemporaryDirectory() as workdir:
        cfg = config(kote_dir, Path(workdir), server.base_url, "n=null", "generator.concurrency=32")
        generate(cfg)
        lines = (Path(workdir) / "cache.jsonl").read_text(encoding="utf-8").splitlines()
    usages = [e["usage"] for e in map(json.loads, lines) if e["text"] in shared_texts]
    prompt = statistics.mean(u["prompt_tokens"] for u in usages)
    completion = statistics.mean(u["completion_tokens"] for u in usages)
    standard = STANDARD_10K_ITEMS * (prompt * prices["input"] + completion * prices["output"]) / 1e6
    return {
        "items_measured": len(usages),
        "mean_prompt_tokens": round(prompt, 1),
        "mean_completion_tokens": round(completion, 1),
        "usd_10k_standard": round(standard, 2),
        "usd_10k_batch": round(standard * discount, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential-items", type=int, default=50)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kote-dir", type=Path, default=Path(os.environ.get("KOTE_DIR", SHARED / "kote")))
    parser.add_argument(
        "--reasoning",
        type=Path,
        default=Path(os.environ.get("KOTE_REASONING_PATH", SHARED / "kote_reasoning" / "reasoning.jsonl")),
    )
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = KEY  # the local fake server's key: nothing here talks to a real API
    common = (f"n={args.items}", f"generator.concurrency={args.concurrency}")
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} CPU cores", "items": args.items}

    with FakeServer("--latency", str(args.latency)) as server:
        results["concurrent_items_per_s"], results["concurrent_runs"] = median_runs(
            args.runs, args.kote_dir, server.base_url, *common
        )
        sequential = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as workdir:
                cfg = config(args.kote_dir, Path(workdir), server.base_url, *common)
                sequential.append(asyncio.run(sequential_rate(cfg, args.sequential_items)))
        results["sequential_items_per_s"] = statistics.median(sequential)
        results["sequential_runs"] = sequential
    results["speedup"] = results["concurrent_items_per_s"] / results["sequential_items_per_s"]

    with FakeServer("--latency", str(args.latency), "--fault-rate", str(args.fault_rate)) as server:
        results["faulty_items_per_s"], results["faulty_runs"] = median_runs(
            args.runs, args.kote_dir, server.base_url, *common
        )

    settings = load_config(config(args.kote_dir, REPO, "http://unused"))
    g = settings.generator
    assert isinstance(g, ChatGPTConfig)
    price = {"input": g.prices[g.model].input, "output": g.prices[g.model].output}
    cost = cost_of_10k(args.kote_dir, args.reasoning, price, g.batch_discount)
    results["cost"] = {"model": g.model, **cost}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
