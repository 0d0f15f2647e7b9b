"""Inference cost of each method on tiny_neox: generated tokens and seconds per 1,000 comments.

Why: explain_then_predict (the paper's method) writes a reasoning before every label line at inference;
predict_then_explain stops after the label line and multitask runs its label task only. This measures what
that saves, with the methods' own code and configs (``conf/method/*.yaml``, ``conf/model/tiny_neox.yaml``).

What a method writes is taken from the gold targets, not from a briefly trained model (whose junk would
run to ``max_new_tokens``): for each of the 1,000 comments of the reasoning sample (real KOTE comments
with reasoning), the tokens its inference task emits up to where decoding stops (:func:`cut_at_stop`),
i.e. what a model that has learnt the format writes. Seconds are greedy decoding of exactly those lengths
(EOS suppressed until then) with the KV cache, rows sorted by length into batches, so a batch runs as long
as its longest row, as in evaluation; timed on the first ``--timed-rows`` comments, scaled to 1,000.
``classifier`` (decoder head, one forward pass) and ``label_only`` with ``inference=score`` (the greedy
pass plus 45 teacher-forced label lines per comment over one cached run of the prompt) are reference rows.

    python benchmarks/inference_cost.py --out /tmp/inference_cost.json      # ~6 min on 2 shared cores
    python benchmarks/inference_cost.py --rows 64 --timed-rows 32 --runs 1  # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from emoreason.data.kote import KoteRow
from emoreason.data.reasoning import read_reasoning_jsonl
from emoreason.models.decoding import Generation, cut_at_stop
from emoreason.models.likelihood import flip_scores
from emoreason.models.methods.classifier import ClassifierMethod
from emoreason.models.methods.generative import GenerativeMethod
from emoreason.models.targets import Pieces, encode_task
from emoreason.models.tokenizers import train_tokenizer

REPO = Path(__file__).resolve().parents[1]
GENERATIVE = ("explain_then_predict", "predict_then_explain", "multitask", "label_only")


def load_rows(path: Path, count: int) -> list[KoteRow]:
    return [KoteRow(r.id, r.text, r.label_ids, r.reasoning) for r in read_reasoning_jsonl(path)[:count]]


def load_method(name: str, **overrides: Any) -> Any:
    cfg = OmegaConf.load(REPO / "conf" / "method" / f"{name}.yaml")
    return instantiate(OmegaConf.merge(cfg, overrides))


def batches(prompts: list[list[int]], lengths: list[int], size: int, pad: int):
    """Left-padded prompt batches of rows sorted by output length, with each batch's longest output."""
    order = sorted(range(len(prompts)), key=lambda i: (lengths[i], len(prompts[i])))
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        width = max(len(prompts[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(chunk):
            ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            mask[row, width - len(prompts[i]) :] = 1
        yield chunk, ids, mask, max(lengths[i] for i in chunk)


def oracle_outputs(method: GenerativeMethod, model: Any, rows: list[KoteRow], max_length: int):
    """Each row's inference prompt, the target tokens its inference task writes before decoding stops, and
    the tokens that costs (the closing EOS included)."""
    task = method.tasks[0]
    encoded = encode_task(task, rows, model.pieces, max_length, method.max_reasoning_tokens)
    newline = set(model.newline_tokens.tolist())
    prompts = model.pieces.prompts(task, rows, max_length)
    outputs, lengths = [], []
    for prompt, ids in zip(prompts, encoded["input_ids"], strict=True):
        kept, spent = cut_at_stop(ids[len(prompt) :], model.pieces, newline, task.label_line + 1)
        outputs.append(kept)
        lengths.append(spent)
    return prompts, outputs, lengths


@torch.inference_mode()
def time_generation(model: Any, prompts, lengths, batch_size: int) -> float:
    """Seconds to decode ``lengths`` tokens after each prompt (batched as in evaluation)."""
    pieces = model.pieces
    started = time.perf_counter()
    for _, ids, mask, steps in batches(prompts, lengths, batch_size, pieces.pad_id):
        model.network.generate(
            input_ids=ids,
            attention_mask=mask,
            min_new_tokens=steps,
            max_new_tokens=steps,
            do_sample=False,
            eos_token_id=pieces.eos_id,
            pad_token_id=pieces.pad_id,
        )
    return time.perf_counter() - started


def decode_steps(prompts, lengths, batch_size: int) -> int:
    """Decode steps × rows those batches compute: each batch runs as long as its longest row."""
    return sum(steps * len(chunk) for chunk, _, _, steps in batches(prompts, lengths, batch_size, 0))


@torch.inference_mode()
def time_forward(model: Any, prompts, batch_size: int, pad: int) -> float:
    started = time.perf_counter()
    for _, ids, mask, _ in batches(prompts, [0] * len(prompts), batch_size, pad):
        model(ids, mask)
    return time.perf_counter() - started


@torch.inference_mode()
def time_scoring(model: Any, method: GenerativeMethod, prompts, outputs, rows, batch_size: int) -> float:
    """The score mode's extra cost: 45 teacher-forced label lines per comment after the greedy pass."""
    pieces = model.pieces
    started = time.perf_counter()
    for chunk, ids, mask, _ in batches(prompts, [0] * len(prompts), batch_size, pieces.pad_id):
        generations = [Generation(outputs[i], len(outputs[i]), list(rows[i].labels), True) for i in chunk]
        flip_scores(
            model,
            {"input_ids": ids, "attention_mask": mask},
            generations,
            method.tasks[0],
            method.score_batch_size,
        )
    return time.perf_counter() - started


Job = tuple[Callable[[], float], float, float]
"""A method's timer (seconds for the timed rows), generated tokens and decode steps × rows per 1,000."""


def build_jobs(
    rows: list[KoteRow], backbone: Any, tokenizer: Any, args: argparse.Namespace
) -> dict[str, Job]:
    per_1000, timed_per_1000 = 1000 / len(rows), 1000 / min(args.timed_rows, len(rows))
    timed = slice(0, args.timed_rows)
    jobs: dict[str, Job] = {}
    for name in GENERATIVE:
        method = load_method(name)
        model = method.build_model(backbone, tokenizer).eval()
        prompts, outputs, lengths = oracle_outputs(method, model, rows, args.max_length)
        generate = partial(time_generation, model, prompts[timed], lengths[timed], args.batch_size)
        tokens = sum(lengths) * per_1000
        steps = decode_steps(prompts[timed], lengths[timed], args.batch_size) * timed_per_1000
        jobs[name] = (generate, tokens, steps)
        if name == "label_only":
            scoring = load_method(name, inference="score")
            score = partial(
                time_scoring, model, scoring, prompts[timed], outputs[timed], rows[timed], args.batch_size
            )

            def generate_then_score(generate: Callable[[], float] = generate, score=score) -> float:
                return generate() + score()

            jobs["label_only (inference=score)"] = (generate_then_score, tokens, steps)
    classifier = ClassifierMethod(dropout=0.0).build_model(backbone, tokenizer).eval()
    texts = [r.text for r in rows[timed]]
    prompts = tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]
    forward = partial(time_forward, classifier, prompts, args.batch_size, Pieces.of(tokenizer).pad_id)
    jobs["classifier (decoder head)"] = (forward, 0.0, 0.0)
    return jobs


def print_table(results: dict[str, dict[str, Any]]) -> None:
    reference = results["explain_then_predict"]["seconds"]
    header = (
        "method",
        "generated tokens / 1,000",
        "decode steps × rows / 1,000",
        "seconds / 1,000",
        "vs explain_then_predict",
    )
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|---:|")
    for name, figures in results.items():
        print(
            f"| {name} | {figures['generated_tokens']:,.0f} | {figures['decode_steps_x_rows']:,.0f} | "
            f"{figures['seconds']:.1f} | {figures['seconds'] / reference:.2f}× |"
        )


def main() -> None:
    default_path = os.environ.get(
        "KOTE_REASONING_PATH", str(REPO.parent / "shared/data/kote_reasoning/reasoning.jsonl")
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reasoning-path", type=Path, default=Path(default_path))
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--timed-rows", type=int, default=128, help="rows decoded for the seconds figures")
    parser.add_argument("--runs", type=int, default=3, help="timed repetitions; the median is reported")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128, help="comment tokens (data.loader.max_length)")
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache" / "emoreason")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    rows = load_rows(args.reasoning_path, args.rows)
    model_cfg = OmegaConf.load(REPO / "conf" / "model" / "tiny_neox.yaml")
    model_cfg.init_seed = 0
    backbone = instantiate(model_cfg)
    texts = [t for r in rows for t in (r.text, r.reasoning or "")]
    tokenizer = train_tokenizer(texts, "bpe", backbone.vocab_size, args.cache_dir)
    jobs = build_jobs(rows, backbone, tokenizer, args)
    timed_per_1000 = 1000 / min(args.timed_rows, len(rows))
    seconds: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(args.runs):  # interleaved, so load from other users of the machine hits every method alike
        for name, (timer, _, _) in jobs.items():
            seconds[name].append(timer() * timed_per_1000)
    results = {
        name: {
            "generated_tokens": tokens,
            "decode_steps_x_rows": steps,
            "seconds": statistics.median(seconds[name]),
            "all_runs_seconds": [round(x, 2) for x in seconds[name]],
        }
        for name, (_, tokens, steps) in jobs.items()
    }
    print_table(results)
    if args.out:
        payload = {
            "rows": len(rows),
            "timed_rows": min(args.timed_rows, len(rows)),
            "runs": args.runs,
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "results": results,
        }
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
