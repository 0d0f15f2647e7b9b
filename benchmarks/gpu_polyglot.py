"""GPU benchmark: the Polyglot-ko-5.8b architecture (random weights) trained under Lightning + DeepSpeed.

Why: the paper's LoRA recipe and a full fine-tune must run, and run efficiently, on the hardware we plan for;
this measures both on one GPU with nothing downloaded (a BPE tokenizer is trained here on synthetic
Korean-like comments whose lengths follow KOTE: median 43 characters, p95 140).

Setups (each in its own process, so one that dies leaves the other's figures):

- ``lora_zero2``: PEFT LoRA (r=8, dropout 0.05) on query_key_value/dense/dense_h_to_4h/dense_4h_to_h,
  ``conf/strategy/deepspeed_zero2.yaml``, torch AdamW; micro-batch 128 at sequence lengths 64 and 96.
- ``full_zero3_offload``: every parameter trains, ``conf/strategy/deepspeed_zero3_offload.yaml`` (optimizer
  and parameters in host RAM), ``DeepSpeedCPUAdam``; micro-batch 128 at length 96.

FLOPs per token, ``N`` = weights of the linear layers (matmul parameters; the input embedding is a lookup):

- model FLOPs, the usual MFU convention for both setups: ``6N`` (forward 2N, backward 4N).
- hardware FLOPs actually executed: full fine-tune ``6N``; LoRA ``4N + 6N_lora`` (forward 2N plus the
  activation-gradient half of the backward, 2N; frozen weights get no weight gradient).
Attention score FLOPs (< 1% at these lengths) are left out of both. MFU divides by 989 TFLOP/s, the H100/H200
SXM dense bf16 peak (the card measured ~790 on a large matmul).

    python benchmarks/gpu_polyglot.py --out results/           # GPU, ~5 minutes
    python benchmarks/gpu_polyglot.py --tiny --out /tmp/bench   # CPU smoke test of everything but DeepSpeed
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

PEAK_BF16_FLOPS = 989e12
LORA_TARGETS = tuple(yaml.safe_load((REPO / "conf" / "lora" / "default.yaml").read_text())["target_modules"])
SETUPS: dict[str, dict[str, Any]] = {
    "lora_zero2": {"scope": "lora", "strategy": "deepspeed_zero2", "seq_lens": (64, 96)},
    "full_zero3_offload": {"scope": "full", "strategy": "deepspeed_zero3_offload", "seq_lens": (96,)},
}
TINY_OVERRIDES = {
    "vocab_size": 512,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 256,
}


def synthetic_comments(n: int, seed: int = 0) -> list[str]:
    """Korean-like comments: Zipf-distributed words of Hangul syllables, lognormal lengths like KOTE's."""
    rng = np.random.default_rng(seed)
    syllables = [
        chr(0xAC00 + (lead * 21 + vowel) * 28 + (tail if rng.random() < 0.4 else 0))
        for lead, vowel, tail in zip(
            rng.integers(0, 19, 700), rng.integers(0, 21, 700), rng.integers(1, 28, 700), strict=True
        )
    ]
    syl_p = 1.0 / (np.arange(len(syllables)) + 3.0)
    syl_p /= syl_p.sum()
    lexicon = ["".join(rng.choice(syllables, size=rng.integers(1, 5), p=syl_p)) for _ in range(8000)]
    lexicon += ["ㅋㅋ", "ㅋㅋㅋ", "ㅠㅠ", "!!", "...", "?"]
    word_p = 1.0 / (np.arange(len(lexicon)) + 2.7)
    word_p /= word_p.sum()
    sigma = math.log(140 / 43) / 1.645  # median 43, p95 140 characters
    comments = []
    for length in np.clip(rng.lognormal(math.log(43), sigma, n), 5, 300).astype(int):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < length:
            words.append(lexicon[rng.choice(len(lexicon), p=word_p)])
        comments.append(" ".join(words))
    return comments


def train_tokenizer(comments: list[str], vocab_size: int, path: Path) -> None:
    """Byte-level BPE like Polyglot's, so token counts per comment are realistic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(comments, trainer)
    tokenizer.save(str(path))


def token_stream(comments: list[str], tokenizer_path: Path) -> tuple[np.ndarray, list[int]]:
    """All comments encoded and joined by end-of-text (for packing), and each comment's token count."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    eos = tokenizer.token_to_id("<|endoftext|>")
    encoded = [e.ids for e in tokenizer.encode_batch(comments)]
    stream = np.fromiter((t for ids in encoded for t in [*ids, eos]), dtype=np.int64)
    return stream, [len(ids) for ids in encoded]


# ---------------------------------------------------------------- worker: one setup in its own process


def run_setup(args: argparse.Namespace) -> dict[str, Any]:
    """Train ``args.worker`` for a few timed steps per sequence length and return its figures."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import Callback
    from omegaconf import OmegaConf
    from transformers import GPTNeoXForCausalLM

    from emoreason.models.architectures import polyglot_ko_5_8b_config
    from emoreason.training.memory import ModelShape, plan, trainable_params
    from emoreason.training.strategies import build_strategy, zero_setup

    setup = SETUPS[args.worker]
    on_gpu = torch.cuda.is_available() and not args.tiny
    config = polyglot_ko_5_8b_config(**(TINY_OVERRIDES if args.tiny else {}), use_cache=False)
    with torch.device("meta"):
        shape = ModelShape.from_module(
            args.worker, GPTNeoXForCausalLM(config), logits_per_token=config.vocab_size
        )
    n_linear = sum(i * o for _, i, o in shape.linears)
    n_lora = trainable_params(shape, "lora", args.lora_r, LORA_TARGETS) if setup["scope"] == "lora" else 0
    strategy_cfg = OmegaConf.load(REPO / "conf" / "strategy" / f"{setup['strategy']}.yaml")

    stream = np.load(args.work / "tokens.npy")
    batch, seq_lens = args.batch, setup["seq_lens"]
    warmup, timed = (
        (args.full_warmup, args.full_timed) if setup["scope"] == "full" else (args.warmup, args.timed)
    )
    samples, offset = [], 0
    for s in seq_lens:
        for _ in range(batch * (warmup + timed)):
            if offset + s > len(stream):
                offset = 0
            samples.append(torch.from_numpy(stream[offset : offset + s].copy()))
            offset += s
    loader = torch.utils.data.DataLoader(samples, batch_size=batch, shuffle=False)

    class CausalLM(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model: torch.nn.Module | None = None

        def configure_model(self) -> None:
            # Inside Lightning's init contexts: on the GPU, and under deepspeed.zero.Init for ZeRO-3.
            if self.model is not None:
                return
            model = GPTNeoXForCausalLM(config)
            if setup["scope"] == "lora":
                from peft import LoraConfig, get_peft_model

                lora = LoraConfig(
                    r=args.lora_r,
                    lora_alpha=2 * args.lora_r,
                    lora_dropout=0.05,
                    target_modules=list(LORA_TARGETS),
                    task_type="CAUSAL_LM",
                )
                model = get_peft_model(model, lora)
            self.model = model

        def training_step(self, input_ids: torch.Tensor, batch_idx: int) -> torch.Tensor:
            assert self.model is not None
            return self.model(input_ids=input_ids, labels=input_ids).loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            params = [p for p in self.parameters() if p.requires_grad]
            if on_gpu and zero_setup(strategy_cfg).offload_optimizer:
                from deepspeed.ops.adam import DeepSpeedCPUAdam

                return DeepSpeedCPUAdam(params, lr=1e-5, adamw_mode=True)
            return torch.optim.AdamW(params, lr=1e-4)

    class StepTimer(Callback):
        def __init__(self) -> None:
            self.records: list[tuple[int, float]] = []
            self.started = 0.0

        def _sync(self) -> None:
            if on_gpu:
                torch.cuda.synchronize()

        def on_train_batch_start(
            self, trainer: L.Trainer, module: L.LightningModule, batch: Any, i: int
        ) -> None:
            self._sync()
            self.started = time.perf_counter()

        def on_train_batch_end(
            self, trainer: L.Trainer, module: L.LightningModule, out: Any, batch: Any, i: int
        ) -> None:
            self._sync()
            self.records.append((batch.shape[1], time.perf_counter() - self.started))

    timer = StepTimer()
    trainer = L.Trainer(
        accelerator="gpu" if on_gpu else "cpu",
        devices=1,
        strategy=build_strategy(strategy_cfg) if on_gpu else "auto",  # Lightning's DeepSpeed needs CUDA
        precision="bf16-mixed",
        max_steps=len(seq_lens) * (warmup + timed),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # a DistributedSampler would shuffle lengths into one batch
        callbacks=[timer],
    )
    started = time.perf_counter()
    trainer.fit(CausalLM(), train_dataloaders=loader)
    phases = []
    for s in seq_lens:
        steps = [dt for length, dt in timer.records if length == s][warmup:]
        step_s = float(np.mean(steps))
        tokens_per_s = batch * s / step_s
        hardware = 6 * n_linear if setup["scope"] == "full" else 4 * n_linear + 6 * n_lora
        planned = plan(
            shape,
            setup["scope"],
            zero_setup(strategy_cfg),
            1,
            micro_batch_size=batch,
            seq_len=s,
            lora_r=args.lora_r,
            lora_dropout=0.05,
            visible_gpus=(1, None),
        )
        phases.append(
            {
                "seq_len": s,
                "micro_batch": batch,
                "timed_steps": len(steps),
                "step_s": step_s,
                "step_s_min": float(np.min(steps)),
                "step_s_max": float(np.max(steps)),
                "tokens_per_s": tokens_per_s,
                "samples_per_s": batch / step_s,
                "mfu_model_6N": tokens_per_s * 6 * n_linear / PEAK_BF16_FLOPS,
                "mfu_hardware": tokens_per_s * hardware / PEAK_BF16_FLOPS,
                "planned_gpu_gib": planned.gpu.total / 1024**3,
                "planned_host_gib": planned.cpu_per_node.total / 1024**3,
            }
        )
    return {
        "setup": args.worker,
        **setup,
        "device": torch.cuda.get_device_name() if on_gpu else "cpu",
        "torch": torch.__version__,
        "params_total": shape.total_params,
        "params_linear_N": n_linear,
        "params_lora": n_lora,
        "fit_wall_s": time.perf_counter() - started,
        "peak_gpu_allocated_gib": torch.cuda.max_memory_allocated() / 1024**3 if on_gpu else None,
        "peak_gpu_reserved_gib": torch.cuda.max_memory_reserved() / 1024**3 if on_gpu else None,
        "peak_host_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "phases": phases,
    }


# ---------------------------------------------------------------- parent: data, then one process per setup


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="results.json and per-setup logs go here")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_polyglot_work"), help="tokenizer, tokens")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny GPT-NeoX on CPU, no DeepSpeed: a smoke test"
    )
    parser.add_argument(
        "--setups", default=",".join(SETUPS), help="comma-separated subset of " + ",".join(SETUPS)
    )
    parser.add_argument("--deadline-s", type=float, default=440.0, help="whole run, setups included")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timed", type=int, default=6)
    parser.add_argument("--full-warmup", type=int, default=1)
    parser.add_argument("--full-timed", type=int, default=3)
    parser.add_argument("--worker", choices=SETUPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.worker:
        result = run_setup(args)
        (args.work / f"{args.worker}.json").write_text(json.dumps(result, indent=2))
        return

    started = time.monotonic()
    setups = [s for s in args.setups.split(",") if s]
    env = {
        **os.environ,
        "TORCH_EXTENSIONS_DIR": str(args.work / "torch_extensions"),
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
        "PYTHONUNBUFFERED": "1",
    }
    prebuild = None
    if not args.tiny and "full_zero3_offload" in setups:
        # DeepSpeedCPUAdam is JIT-compiled; build it on the CPU while the GPU runs the LoRA setup.
        build = "from deepspeed.ops.op_builder import CPUAdamBuilder; CPUAdamBuilder().load()"
        build_log = (args.out / "cpu_adam_build.log").open("w")
        prebuild = subprocess.Popen(
            [sys.executable, "-c", build], stdout=build_log, stderr=subprocess.STDOUT, env=env
        )
    comments = synthetic_comments(4000 if args.tiny else 30000)
    tokenizer_path = args.work / "tokenizer.json"
    train_tokenizer(comments, TINY_OVERRIDES["vocab_size"] if args.tiny else 30000, tokenizer_path)
    stream, lengths = token_stream(comments, tokenizer_path)
    np.save(args.work / "tokens.npy", stream)
    results: dict[str, Any] = {
        "tokens_per_comment": {"median": float(np.median(lengths)), "p95": float(np.percentile(lengths, 95))},
        "chars_per_comment": {
            "median": float(np.median([len(c) for c in comments])),
            "p95": float(np.percentile([len(c) for c in comments], 95)),
        },
        "setups": {},
    }
    for setup in setups:
        remaining = args.deadline_s - (time.monotonic() - started)
        log = args.out / f"{setup}.log"
        cmd = [sys.executable, __file__, "--worker", setup, *sys.argv[1:]]
        try:
            rc: int | str = subprocess.run(
                cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, timeout=max(remaining, 1)
            ).returncode
        except subprocess.TimeoutExpired:
            rc = f"timeout after {remaining:.0f} s"
        path = args.work / f"{setup}.json"
        results["setups"][setup] = (
            json.loads(path.read_text()) if rc == 0 else {"error": f"exit {rc}, see {log}"}
        )
    if prebuild is not None:
        prebuild.kill()
    results["wall_s"] = time.monotonic() - started
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(render(results))


def render(results: dict[str, Any]) -> str:
    """A markdown table for docs/benchmarks.md."""
    lines = [
        "| setup | seq | batch | tokens/s | samples/s | step s | peak GPU GiB (alloc/reserved) | host GiB |"
        " MFU 6N | MFU hardware |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["setups"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} |||||||||")
            continue
        for p in r["phases"]:
            gpu = (
                f"{r['peak_gpu_allocated_gib']:.1f} / {r['peak_gpu_reserved_gib']:.1f}"
                if r["peak_gpu_allocated_gib"] is not None
                else "-"
            )
            lines.append(
                f"| {name} | {p['seq_len']} | {p['micro_batch']} | {p['tokens_per_s']:,.0f} |"
                f" {p['samples_per_s']:,.1f} | {p['step_s']:.3f} | {gpu} | {r['peak_host_rss_gib']:.1f} |"
                f" {p['mfu_model_6N']:.1%} | {p['mfu_hardware']:.1%} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
