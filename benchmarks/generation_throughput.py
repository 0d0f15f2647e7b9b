"""Reasoning generation throughput and cost against the local fake OpenAI server (docs/benchmarks.md).

    KOTE_DIR=../shared/data/kote python benchmarks/generation_throughput.py [--baseline-tree DIR]

1. Side by side, interleaved, ``--runs`` times each, on the same ``--items`` comments with ``--latency`` s
   server latency: ``python generate.py`` (online, ``--concurrency``), the openai-cookbook's parallel request
   processor (``cookbook_processor.py``, capped at the same number of calls in flight), and with
   ``--baseline-tree`` another checkout's ``generate.py`` (e.g. ``git archive HEAD src conf generate.py``);
   each without and with ``--fault-rate`` of requests failing (429 with ``Retry-After: 1``, and 503, in
   equal shares; the baseline only with ``--baseline-faults``), and ``generate.py`` alone on
   ``--fault-items`` both ways, where the retry tail weighs less. Each run is a fresh process against a
   fresh server, so start-up and exit are measured as a user sees them: items/s from the first request's
   arrival to the last answer, the seconds (and CPU seconds) before the first request and the seconds after
   the last answer until the process has exited, and the client's CPU per item while it calls (/proc).
2. A plain sequential loop of ``chat.completions.create`` with the same client settings (on fewer items: its
   rate is one item per round trip, whatever the count).
3. The cost of 10,000 items for the default model, standard and Batch API prices, from the usage measured
   over the whole pipeline while the server answers with the shared sample's real reasoning texts.

The server runs in its own process (``tests/support/fake_openai.py``), so it does not share the client's
event loop. Its token counts are ``ceil(UTF-8 bytes / 4)`` per text plus 3 per message and 3 per reply, not
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
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from openai import AsyncOpenAI

from emoreason.generation.client import request_body
from emoreason.generation.config import ChatGPTConfig, load_config
from emoreason.generation.items import WorkItem, build_items
from emoreason.generation.prompt import PromptTemplate
from emoreason.generation.run import generate, sample_rows

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
KEY = "sk-benchmark-local"
STANDARD_10K_ITEMS = 10_000
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


class FakeServer:
    """``fake_openai.py`` in a subprocess; ``base_url`` once it listens, ``stats()`` of the chats served."""

    def __init__(self, *args: str) -> None:
        script = REPO / "tests" / "support" / "fake_openai.py"
        command = [sys.executable, str(script), "--api-key", KEY, *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{line.split()[1]}/v1"

    def stats(self) -> dict[str, Any]:
        root = self.base_url.removesuffix("/v1")
        with urllib.request.urlopen(f"{root}/_stats", timeout=10) as response:
            result: dict[str, Any] = json.load(response)
        return result

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def source_overrides(tree: Path, kote_dir: Path) -> list[str]:
    """Where a tree's ``generate.py`` reads KOTE from: ``data.source.*`` now, top-level keys before."""
    if "kote_dir:" in (tree / "conf" / "generate.yaml").read_text(encoding="utf-8"):
        return [f"kote_dir={kote_dir}", "split_scheme=val_holdout", "download=false"]
    return [
        f"data.source.root={kote_dir}",
        "data.source.split_scheme=val_holdout",
        "data.source.download=false",
    ]


def overrides(tree: Path, kote_dir: Path, workdir: Path, base_url: str, *extra: str) -> list[str]:
    return [
        *source_overrides(tree, kote_dir),
        f"cache_path={workdir / 'cache.jsonl'}",
        f"output={workdir / 'reasoning.jsonl'}",
        "summary_path=null",
        "progress=false",
        f"generator.base_url={base_url}",
        "generator.requests_per_minute=null",
        "generator.tokens_per_minute=null",
        "generator.max_retries=10",
        *extra,
    ]


def config(kote_dir: Path, workdir: Path, base_url: str, *extra: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="generate", overrides=overrides(REPO, kote_dir, workdir, base_url, *extra))


def work_items(kote_dir: Path, count: int) -> tuple[ChatGPTConfig, list[WorkItem]]:
    """The first ``count`` comments of the seed sample, rendered as ``generate.py`` renders them."""
    settings = load_config(config(kote_dir, REPO, "http://unused", f"n={count}"))
    g = settings.generator
    assert isinstance(g, ChatGPTConfig)
    prompt = PromptTemplate.from_config(settings.prompt)
    return g, build_items(sample_rows(settings), prompt, model=g.model, temperature=g.temperature)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, from /proc (clock ticks, 10 ms)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


@dataclass
class Run:
    items_per_s: float
    start_s: float
    exit_s: float
    cpu_ms_per_item: float
    start_cpu_s: float
    """CPU seconds spent before the first request: start-up's cost, whatever the load."""
    requests: int


def timed_process(
    command: list[str], cwd: Path, env: dict[str, str], server: FakeServer, items: int, latency: float
) -> Run:
    """Run one client process to its end; time it against the server's clock (both ``time.monotonic``)."""
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def sample() -> None:
        while process.poll() is None:
            try:
                samples.append((time.monotonic(), cpu_seconds(process.pid)))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    ended = time.monotonic()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{command[:2]} exited {process.returncode}: {stderr.decode()[-2000:]}")
    stats = server.stats()
    first, last = stats["first_arrived"], stats["last_arrived"] + latency

    def cpu_at(moment: float) -> float:
        before = [c for t, c in samples if t <= moment]
        return before[-1] if before else 0.0

    return Run(
        items_per_s=items / (last - first),
        start_s=first - started,
        exit_s=ended - last,
        cpu_ms_per_item=1000 * (cpu_at(last) - cpu_at(first)) / items,
        start_cpu_s=cpu_at(first),
        requests=stats["chat_requests"],
    )


def run_generate(tree: Path, server: FakeServer, args: argparse.Namespace, workdir: Path, items: int) -> Run:
    extra = (f"n={items}", f"generator.concurrency={args.concurrency}", f"hydra.run.dir={workdir / 'run'}")
    command = [
        sys.executable,
        "generate.py",
        *overrides(tree, args.kote_dir, workdir, server.base_url, *extra),
    ]
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OPENAI_API_KEY": KEY}
    return timed_process(command, tree, env, server, items, args.latency)


def run_cookbook(
    requests: Path, server: FakeServer, args: argparse.Namespace, workdir: Path, items: int
) -> Run:
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "cookbook_processor.py"),
        f"--requests={requests}",
        f"--results={workdir / 'results.jsonl'}",
        f"--url={server.base_url}/chat/completions",
        f"--api-key={KEY}",
        f"--max-in-flight={args.concurrency}",
        "--max-requests-per-minute=1e9",  # no client-side limit, as generate.py runs here
        "--max-tokens-per-minute=1e12",
        "--max-attempts=11",  # generator.max_retries=10 plus the first attempt
    ]
    run = timed_process(command, REPO, dict(os.environ), server, items, args.latency)
    lines = (workdir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    if len(lines) != items or any("error" in json.loads(line)[1] for line in lines):
        raise RuntimeError("the cookbook processor did not finish every item")
    return run


async def sequential_rate(base_url: str, g: ChatGPTConfig, items: list[WorkItem]) -> float:
    """items/s of a plain loop, one awaited call after another, with the client settings generate.py uses."""
    client = AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0, timeout=g.timeout_s)
    start = time.perf_counter()
    for item in items:
        await client.chat.completions.create(**request_body(g, item.messages))
    elapsed = time.perf_counter() - start
    await client.close()
    return len(items) / elapsed


def side_by_side(args: argparse.Namespace) -> dict[str, Any]:
    """Every (condition, contender) pair ``--runs`` times, interleaved round by round, so load drifts hit all.

    ``clean`` and ``faults`` run every client on ``--items``; ``clean_long`` and ``faults_long`` run
    ``generate.py`` alone on ``--fault-items``: honouring ``Retry-After: 1`` adds at least 1.2 s to any item
    refused near the end, a tail that a 3-s run cannot hide, so the retention under faults is read there.
    """
    g, items = work_items(args.kote_dir, max(args.items, args.fault_items))
    faults = ("--fault-rate", str(args.fault_rate), "--faults", "429,503", "--retry-after-s", "1")
    everyone = ["generate", "cookbook", *(["baseline"] if args.baseline_tree else [])]
    conditions: dict[str, tuple[int, tuple[str, ...], list[str]]] = {
        "clean": (args.items, (), everyone),
        "faults": (args.items, faults, everyone if args.baseline_faults else everyone[:2]),
        "clean_long": (args.fault_items, (), ["generate"]),
        "faults_long": (args.fault_items, faults, ["generate"]),
    }
    runs: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        requests = {}
        for count in {args.items, args.fault_items}:
            requests[count] = Path(scratch) / f"requests{count}.jsonl"
            lines = [
                json.dumps({**request_body(g, i.messages), "metadata": {"key": i.key}}) for i in items[:count]
            ]
            requests[count].write_text("\n".join(lines) + "\n", encoding="utf-8")
        for _ in range(args.runs):
            for condition, (count, server_args, contenders) in conditions.items():
                for contender in contenders:
                    with (
                        FakeServer("--latency", str(args.latency), *server_args) as server,
                        tempfile.TemporaryDirectory() as workdir,
                    ):
                        if contender == "cookbook":
                            run = run_cookbook(requests[count], server, args, Path(workdir), count)
                        else:
                            tree = REPO if contender == "generate" else args.baseline_tree
                            run = run_generate(tree, server, args, Path(workdir), count)
                    runs.setdefault(f"{contender}/{condition}", []).append(run)
                    print(contender, condition, run, file=sys.stderr, flush=True)
        with FakeServer("--latency", str(args.latency)) as server:
            sequential = [
                asyncio.run(sequential_rate(server.base_url, g, items[: args.sequential_items]))
                for _ in range(args.runs)
            ]
    table: dict[str, Any] = {
        name: {
            field: round(statistics.median(getattr(r, field) for r in done), 3)
            for field in ("items_per_s", "start_s", "start_cpu_s", "exit_s", "cpu_ms_per_item")
        }
        | {"items_per_s_runs": [round(r.items_per_s, 1) for r in done]}
        for name, done in runs.items()
    }
    table["sequential"] = {"items_per_s": round(statistics.median(sequential), 2), "runs": sequential}

    def rate(name: str) -> float:
        return float(table[name]["items_per_s"])

    table["ratios"] = {
        "generate_vs_cookbook": round(rate("generate/clean") / rate("cookbook/clean"), 3),
        "generate_faults_vs_clean": round(rate("generate/faults") / rate("generate/clean"), 3),
        "generate_faults_vs_clean_long": round(rate("generate/faults_long") / rate("generate/clean_long"), 3),
        "generate_vs_sequential": round(rate("generate/clean") / table["sequential"]["items_per_s"], 1),
        **(
            {"generate_vs_baseline": round(rate("generate/clean") / rate("baseline/clean"), 3)}
            if args.baseline_tree
            else {}
        ),
    }
    return table


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
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--sequential-items", type=int, default=50)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fault-items", type=int, default=5000, help="items of the *_long runs")
    parser.add_argument("--baseline-tree", type=Path, help="a checkout (src, conf, generate.py) to compare")
    parser.add_argument("--baseline-faults", action="store_true", help="run the baseline with faults too")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost of 10,000 items")
    parser.add_argument("--kote-dir", type=Path, default=Path(os.environ.get("KOTE_DIR", SHARED / "kote")))
    parser.add_argument(
        "--reasoning",
        type=Path,
        default=Path(os.environ.get("KOTE_REASONING_PATH", SHARED / "kote_reasoning" / "reasoning.jsonl")),
    )
    args = parser.parse_args()
    args.kote_dir = args.kote_dir.resolve()  # the baseline runs in its own tree
    os.environ["OPENAI_API_KEY"] = KEY  # the local fake server's key: nothing here talks to a real API
    results: dict[str, Any] = {
        "machine": f"{os.cpu_count()} CPU cores",
        "load_average": os.getloadavg(),
        "items": args.items,
        "concurrency": args.concurrency,
        **side_by_side(args),
        "load_average_after": os.getloadavg(),
    }
    if not args.no_cost:
        settings = load_config(config(args.kote_dir, REPO, "http://unused"))
        g = settings.generator
        assert isinstance(g, ChatGPTConfig)
        price = {"input": g.prices[g.model].input, "output": g.prices[g.model].output}
        cost = cost_of_10k(args.kote_dir, args.reasoning, price, g.batch_discount)
        results["cost"] = {"model": g.model, **cost}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
