#!/usr/bin/env bash
# One device call that checks what CPU tests cannot: train.py + evaluate.py on a CUDA GPU with bf16 and
# DeepSpeed ZeRO (LoRA adapters-only checkpoint under ZeRO-2, full fine-tune under ZeRO-3), then the
# default `python train.py` on a GPU. Prints a JSON summary and copies every metrics.json to $OUT.
#   (device) bash benchmarks/gpu_pipeline_check.sh          # needs KOTE_DIR, KOTE_REASONING_PATH, $OUT
set -uo pipefail
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 WANDB_MODE=offline
out="${OUT:-/tmp/gpu_check}"; mkdir -p "$out"
common=(logger=csv "~callbacks.progress_bar" trainer=gpu data.source.split_scheme=val_holdout)

run() {  # name, then train.py overrides: train, then re-score the best checkpoint with evaluate.py
  local name=$1; shift
  local dir="/tmp/gpu_check/$name" started=$SECONDS
  python3 train.py "${common[@]}" "hydra.run.dir=$dir" "$@" >"$out/$name.log" 2>&1 || { echo "FAILED $name"; tail -30 "$out/$name.log"; return; }
  local trained=$((SECONDS - started))
  local best; best=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['best_checkpoint'])" "$dir/metrics.json")
  python3 evaluate.py "ckpt_path=$best" "hydra.run.dir=$dir/eval" >>"$out/$name.log" 2>&1 || { echo "FAILED evaluate $name"; tail -30 "$out/$name.log"; }
  cp "$dir/metrics.json" "$out/$name.metrics.json"
  python3 - "$dir" "$name" "$trained" "$best" "$out/$name.log" <<'PY'
import json, pathlib, re, sys
d, name, seconds, best = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), pathlib.Path(sys.argv[4])
plan = re.search(r"Memory plan: (.*)\n(?:  .*\n)*?  total +([0-9.]+)", pathlib.Path(sys.argv[5]).read_text())
train, ev = json.loads((d / "metrics.json").read_text()), json.loads((d / "eval" / "metrics.json").read_text())
size = sum(p.stat().st_size for p in best.rglob("*")) if best.is_dir() else best.stat().st_size
print(json.dumps({"run": name, "seconds": seconds, "best": best.name, "checkpoint_mb": round(size / 2**20, 2),
                  "test_macro_f1": round(train["test"]["tuned"]["macro_f1"], 4),
                  "test_micro_f1": round(train["test"]["tuned"]["micro_f1"], 4),
                  "evaluate_equals_train": ev["test"] == train["test"], "threshold": train["threshold"],
                  "memory_plan": plan and f"{plan[1]}: {plan[2]} GiB per GPU"}))
PY
}

python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
for name in ${RUNS:-zero3_full zero2_lora_neox default_gpu}; do
  case $name in
    zero3_full) run zero3_full strategy=deepspeed_zero3 trainer.max_epochs=2 ;;
    zero2_lora_neox) run zero2_lora_neox model=tiny_neox method=label_only lora=default strategy=deepspeed_zero2 \
      data=kote_reasoning data.source.missing_reasoning=drop trainer.max_epochs=1 method.max_new_tokens=32 \
      data.loader.eval_batch_size=512 ;;
    default_gpu) run default_gpu ;;
  esac
done
