"""Score mode's extra pass, a former ``generative.py`` against the current one, beside greedy generation.

Loads the former module from a file (e.g. ``git show <commit>:src/emoreason/models/generative.py``), so
both run in one process on the same comments, interleaved: on shared cores that keeps load drift off the
ratio. Same rows, model and gold label lines as ``inference_cost.py`` (label_only on tiny_neox).

    git show a2656d5:src/emoreason/models/generative.py > /tmp/generative_before.py
    python benchmarks/score_mode_ab.py /tmp/generative_before.py --rows 32 --runs 3
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from inference_cost import REPO, batches, load_method, load_rows, oracle_outputs, time_generation
from omegaconf import OmegaConf

from emoreason.models.decoding import Generation
from emoreason.models.likelihood import flip_scores
from emoreason.models.tokenizers import train_tokenizer


def load_former(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("former_generative", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@torch.inference_mode()
def time_scores(score: Any, model: Any, method: Any, prompts, outputs, rows) -> tuple[float, torch.Tensor]:
    started, scores = time.perf_counter(), []
    for chunk, ids, mask, _ in batches(prompts, [0] * len(prompts), 64, model.pieces.pad_id):
        generations = [Generation(outputs[i], len(outputs[i]), list(rows[i].labels), True) for i in chunk]
        batch = {"input_ids": ids, "attention_mask": mask}
        scores.append(score(model, batch, generations, method.tasks[0], method.score_batch_size))
    return time.perf_counter() - started, torch.cat(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("former", type=Path, help="a former src/emoreason/models/generative.py")
    parser.add_argument(
        "--reasoning-path", type=Path, default=REPO.parent / "shared/data/kote_reasoning/reasoning.jsonl"
    )
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up; medians reported")
    args = parser.parse_args()
    former = load_former(args.former)
    rows = load_rows(args.reasoning_path, args.rows)
    model_cfg = OmegaConf.load(REPO / "conf" / "model" / "tiny_neox.yaml")
    model_cfg.init_seed = 0
    backbone = instantiate(model_cfg)
    texts = [t for r in rows for t in (r.text, r.reasoning or "")]
    tokenizer = train_tokenizer(texts, "bpe", backbone.vocab_size, None)
    method = load_method("label_only", inference="score")
    model = method.build_model(backbone, tokenizer).eval()
    prompts, outputs, lengths = oracle_outputs(method, model, rows, 128)
    seconds: dict[str, list[float]] = {"generate": [], "score_former": [], "score_current": []}
    for run in range(args.runs + 1):
        generate = time_generation(model, prompts, lengths, 64)
        before, old_scores = time_scores(former.flip_scores, model, method, prompts, outputs, rows)
        after, new_scores = time_scores(flip_scores, model, method, prompts, outputs, rows)
        difference = float((old_scores - new_scores).abs().max())
        print(
            f"run {run}: generate {generate:.2f} s, former {before:.2f} s, current {after:.2f} s, "
            f"max |score difference| {difference:.1e}" + (" (warm-up)" if run == 0 else "")
        )
        if run:
            for key, value in zip(seconds, (generate, before, after), strict=True):
                seconds[key].append(value)
    median = {key: statistics.median(values) for key, values in seconds.items()}
    print({key: round(value, 2) for key, value in median.items()}, f"threads {torch.get_num_threads()}")
    print(
        f"score pass former/current {median['score_former'] / median['score_current']:.2f}×; "
        f"(generate + score) / generate: former {1 + median['score_former'] / median['generate']:.2f}×, "
        f"current {1 + median['score_current'] / median['generate']:.2f}×"
    )


if __name__ == "__main__":
    main()
