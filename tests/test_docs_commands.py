"""Every command README.md and docs/*.md print, checked the way the table below says, with its exit status and
the line it promises.

How a command is checked (``Row.how``):

- ``run``: as printed, from the repository root, with placeholders filled from fixture runs
  (``ckpt_path=...`` and ``outputs/<date>/<time>/checkpoints/last.ckpt``: the fixture run's ``last.ckpt``;
  ``multirun/<date>/<time>``: a two-job fixture sweep; ``comments.txt``, ``mine.tsv``, ``reasoning.jsonl``:
  small fixture files). A Hydra command also gets ``hydra.run.dir``/``hydra.sweep.dir`` in a temp folder,
  so nothing lands in the clone.
- ``small``: as ``run``, plus the one small-data override :data:`SMALL_DATA` (a 1,200/600-row copy of KOTE,
  one epoch of two batches, one batch of final scoring): the command's own overrides all stay.
- ``cfg``: needs a GPU, model weights, an API key or the network, or trains for hours: composed with
  ``--cfg job`` (``-m`` dropped, every comma-separated sweep value reduced to its first), which checks every
  group option and key it names; the line promised is a key of the composed config. ``+launcher=slurm``
  needs hydra-submitit-launcher, which is not a dependency: where it is not installed it is left out, and
  ``hydra.launcher.*`` with it.
- ``make``: ``make -n`` (what it would run, without installing anything): the line is the command it runs.
- ``help``: a tool outside the Hydra entry points (benchmarks, W&B, pip extras): it answers ``--help`` (or
  the extra it installs is declared) here; running it needs a GPU, minutes or the network.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.project import REPO, SMALL_RUN, shared_kote_dir, shared_reasoning_path

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"^\s*(?:[A-Z_]+=\S|(?:python|make|wandb|pip|\.venv/bin/python|export|nohup)\b)")
HYDRA_SCRIPTS = {"train.py", "evaluate.py", "generate.py", "plan_memory.py"}

SMALL_DATA = (
    *[o for o in SMALL_RUN if o != "~callbacks.progress_bar"],
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=2",
    "++trainer.limit_val_batches=1",
    "++trainer.limit_test_batches=1",
)
"""The one small-data override of ``small`` rows (``paths.kote_dir`` comes with it, see ``fill``)."""


@dataclass(frozen=True)
class Row:
    how: str
    line: str
    """A regular expression the command's stdout + stderr must match (its promised line)."""
    status: int = 0


ROWS: dict[tuple[str, str], Row] = {
    # README.md
    ("README.md", "KOTE_DIR=../shared/data/kote make train"): Row("make", r"python train\.py"),
    ("README.md", "KOTE_DIR=../shared/data/kote make test"): Row(
        "make", r"ruff check \.[\s\S]*python -m pytest"
    ),
    ("README.md", "python train.py"): Row("small", r"Summary\n  test macro-F1 \d\.\d{4}  micro-F1"),
    ("README.md", "python train.py model=kcelectra trainer=gpu optim.lr=5e-5"): Row(
        "cfg", r"name_or_path: beomi/KcELECTRA-base-v2022"
    ),
    (
        "README.md",
        "python train.py model=tiny_neox data=kote_reasoning method=explain_then_predict "
        "data.source.missing_reasoning=drop",
    ): Row("small", r"test macro-F1 \d\.\d{4}"),
    (
        "README.md",
        "python train.py model=polyglot5.8b data=kote_reasoning method=explain_then_predict lora=default "
        "trainer=multi_gpu strategy=deepspeed_zero2",
    ): Row("cfg", r"stage: 2"),
    ("README.md", "python train.py ckpt_path=outputs/<date>/<time>/checkpoints/last.ckpt"): Row(
        "small", r"Summary"
    ),
    ("README.md", "python train.py debug=fast_dev_run"): Row("run", r"Summary"),
    ("README.md", "python evaluate.py ckpt_path=outputs/<date>/<time>/checkpoints/last.ckpt"): Row(
        "run", r"macro-F1"
    ),
    ("README.md", 'python evaluate.py ckpt_path=... text="아 진짜 어이가 없네"'): Row(
        "run", r"아 진짜 어이가 없네"
    ),
    ("README.md", 'python evaluate.py ckpt_path=... text="아 진짜 어이가 없네" threshold=0.3'): Row(
        "run", r"아 진짜 어이가 없네"
    ),
    ("README.md", "python evaluate.py ckpt_path=... input_file=comments.txt output_file=tags.jsonl"): Row(
        "run", r"tags\.jsonl"
    ),
    ("README.md", "python evaluate.py ckpt_path=... data_file=mine.tsv threshold=0.3"): Row(
        "run", r"macro-F1"
    ),
    (
        "README.md",
        'python evaluate.py ckpt_path="multirun/<date>/<time>/data=kote_plain,model=tiny_electra,seed=0/'
        'checkpoints/last.ckpt"',
    ): Row("run", r"macro-F1"),
    ("README.md", "python train.py --help"): Row("run", r"== Config groups"),
    ("README.md", "python evaluate.py ckpt_path=outputs/<date>/<time>/adapter"): Row(
        "cfg", r"ckpt_path: outputs/<date>/<time>/adapter"
    ),
    ("README.md", "python evaluate.py ckpt_path=colleague.ckpt trust_checkpoint=true"): Row(
        "cfg", r"trust_checkpoint: true"
    ),
    (
        "README.md",
        'python -c "from emoreason.training.checkpoints import resave_trusted; '
        "resave_trusted('old.ckpt', 'new.ckpt')\"",
    ): Row("run", r"^$"),
    ("README.md", "python train.py debug=smoke > smoke.log"): Row("small", r"epoch 1/1 \|.*samples/s"),
    ("README.md", "python train.py debug=smoke --cfg job"): Row("run", r"limit_test_batches: 3"),
    # docs/benchmarks.md
    (
        "benchmarks.md",
        "KOTE_DIR=../shared/data/kote .venv/bin/python benchmarks/input_pipeline.py --runs 3",
    ): Row("help", r"usage"),
    (
        "benchmarks.md",
        "python train.py -m seed=0,1,2 optim.lr=1e-3,5e-4 logger=none hydra.sweep.dir=/tmp/lr/sweep",
    ): Row("cfg", r"lr: 0\.001"),
    ("benchmarks.md", "python report.py /tmp/lr/sweep"): Row("run", r"report\.md"),
    ("benchmarks.md", "KOTE_DIR=../shared/data/kote python benchmarks/generation_throughput.py"): Row(
        "help", r"usage"
    ),
    ("benchmarks.md", "python benchmarks/inference_cost.py --out results.json"): Row("help", r"usage"),
    ("benchmarks.md", "python benchmarks/gpu_polyglot.py --out results/"): Row("help", r"usage"),
    ("benchmarks.md", "python benchmarks/gpu_polyglot.py --tiny --out /tmp/b"): Row("help", r"usage"),
    # docs/generation.md
    ("generation.md", "export OPENAI_API_KEY=sk-..."): Row("help", r""),
    ("generation.md", "python generate.py dry_run=true"): Row("cfg", r"dry_run: true"),
    ("generation.md", "python generate.py"): Row("cfg", r"model: gpt-4o-mini"),
    ("generation.md", "python generate.py generator.mode=batch"): Row("cfg", r"mode: batch"),
    ("generation.md", "python generate.py max_cost_usd=2"): Row("cfg", r"max_cost_usd: 2"),
    (
        "generation.md",
        "OPENAI_API_KEY=local python generate.py generator.base_url=http://127.0.0.1:8000/v1 "
        "generator.model=<served name>",
    ): Row("cfg", r"base_url: http://127\.0\.0\.1:8000/v1"),
    (
        "generation.md",
        "python generate.py generator.model=o4-mini generator.temperature=null "
        "'++generator.prices={o4-mini:{input:1.1,output:4.4}}'",
    ): Row("cfg", r"o4-mini:\n\s+input: 1\.1"),
    (
        "generation.md",
        "python generate.py generator=cached generator.source=../shared/data/kote_reasoning/reasoning.jsonl "
        "n=null generator.allow_missing=true",
    ): Row("run", r"reasoning"),
    (
        "generation.md",
        "python generate.py generator.model=gpt-4.1-mini "
        "'++generator.prices={gpt-4.1-mini:{input:0.4,output:1.6}}'",
    ): Row("cfg", r"gpt-4\.1-mini:\n\s+input: 0\.4"),
    (
        "generation.md",
        "python generate.py generator.model=llama3.1:8b "
        r"'++generator.prices={llama3.1\:8b:{input:0,output:0}}'",
    ): Row("cfg", r"llama3\.1:8b:\n\s+input: 0"),
    # docs/reasoning.md
    (
        "reasoning.md",
        "KOTE_DIR=../shared/data/kote KOTE_REASONING_PATH=../shared/data/kote_reasoning/reasoning.jsonl "
        "python train.py model=tiny_neox data=kote_reasoning data.source.missing_reasoning=drop "
        "method=explain_then_predict",
    ): Row("small", r"test macro-F1 \d\.\d{4}"),
    (
        "reasoning.md",
        "python train.py model=polyglot5.8b trainer=gpu data=kote_reasoning method=explain_then_predict",
    ): Row("cfg", r"_target_: emoreason\.models\.methods\.generative\.ExplainThenPredictMethod"),
    ("reasoning.md", "python evaluate.py ckpt_path=outputs/<date>/<time>/checkpoints/last.ckpt"): Row(
        "run", r"macro-F1"
    ),
    (
        "reasoning.md",
        "python -m emoreason.data.reasoning_stats ../shared/data/kote_reasoning/reasoning_val_all.jsonl",
    ): Row("run", r"\S"),
    ("reasoning.md", "python -m emoreason.data.reasoning_stats reasoning.jsonl --json"): Row("run", r"\{"),
    (
        "reasoning.md",
        "python -m emoreason.data.reasoning_stats reasoning.jsonl --card reasoning.card.md "
        "--prompt ../shared/data/kote_reasoning/prompt.md --cost '$4.10'",
    ): Row("run", r"\S"),
    # docs/results.md
    (
        "results.md",
        "KOTE_DIR=../shared/data/kote "
        "KOTE_REASONING_PATH=../shared/data/kote_reasoning/reasoning_val_all.jsonl "
        "nohup .venv/bin/python train.py -m +sweep=study > study.log 2>&1 &",
    ): Row("cfg", r"seed: 0"),
    ("results.md", ".venv/bin/python report.py multirun/study"): Row("run", r"report\.md"),
    (
        "results.md",
        "KOTE_DIR=../shared/data/kote python train.py -m seed=0,1,2 logger=none "
        "model.config.hidden_size=128 model.config.num_hidden_layers=2 model.config.num_attention_heads=2 "
        "model.config.intermediate_size=512 optim.lr=1e-3 trainer.max_epochs=15 "
        "callbacks.early_stopping.patience=4 hydra.sweep.dir=/tmp/tiny_small",
    ): Row("cfg", r"hidden_size: 128"),
    (
        "results.md",
        "KOTE_DIR=../shared/data/kote python train.py -m seed=0,1,2 logger=none method.pooling=token,mean "
        "method.bias_init=uniform,prior hydra.sweep.dir=/tmp/pooling",
    ): Row("cfg", r"pooling: token\n  bias_init: uniform"),
    # docs/scale.md
    ("scale.md", "python train.py strategy=deepspeed_zero2 +strategy.config.gradient_clipping=1.0"): Row(
        "small", r"train\.py: error: .*gradient_clipping", status=2
    ),
    ("scale.md", "python train.py trainer=multi_gpu trainer.devices=4 strategy=deepspeed_zero2"): Row(
        "cfg", r"devices: 4"
    ),
    ("scale.md", "python train.py trainer=gpu strategy=deepspeed_zero3_offload"): Row("cfg", r"stage: 3"),
    (
        "scale.md",
        "python train.py -m +launcher=slurm trainer=multi_node trainer.num_nodes=4 strategy=deepspeed_zero3 "
        "hydra.launcher.partition=gpu hydra.launcher.timeout_min=1440 seed=0,1,2",
    ): Row("cfg", r"num_nodes: 4"),
    ("scale.md", "python plan_memory.py model=polyglot5.8b trainer=gpu"): Row(
        "run", r"Memory plan: EleutherAI/polyglot-ko-5\.8b, lora, DDP/single"
    ),
    (
        "scale.md",
        "python plan_memory.py model=polyglot5.8b lora=none method=label_only trainer=multi_gpu "
        "trainer.devices=8 "
        "strategy=deepspeed_zero3 gpu_memory_gib=80",
    ): Row("run", r"full, ZeRO-3, 8 GPU\(s\)[\s\S]*fits: yes"),
    (
        "scale.md",
        "python plan_memory.py model=kcelectra trainer=gpu strategy=ddp +model.gradient_checkpointing=true",
    ): Row("run", r"KcELECTRA-base-v2022, full, DDP/single.*gradient checkpointing on"),
    (
        "scale.md",
        "python plan_memory.py model=polyglot5.8b lora=none method=label_only trainer=gpu "
        "data.loader.batch_size=16 "
        "model.gradient_checkpointing=false gpu_memory_gib=80",
    ): Row("run", r"total              96\.02[\s\S]*WILL NOT FIT: 96\.0 GiB per GPU > 80\.0 GiB"),
    # docs/sweeps.md
    (
        "sweeps.md",
        "KOTE_DIR=../shared/data/kote KOTE_REASONING_PATH=../shared/data/kote_reasoning/reasoning.jsonl "
        "python train.py -m +sweep=tiny_ablation",
    ): Row("cfg", r"seed: 0"),
    ("sweeps.md", "python train.py -m +sweep=ablation"): Row("cfg", r"seed: 0"),
    (
        "sweeps.md",
        "KOTE_DIR=../shared/data/kote "
        "KOTE_REASONING_PATH=../shared/data/kote_reasoning/reasoning_val_all.jsonl "
        "python train.py -m +sweep=study",
    ): Row("cfg", r"seed: 0"),
    ("sweeps.md", "python report.py multirun/<date>/<time>"): Row("run", r"report\.md"),
    ("sweeps.md", "python train.py -m +sweep=ablation \"hydra.sweeper.params.seed='0,1,2,3,4'\""): Row(
        "cfg", r"seed: 0"
    ),
    (
        "sweeps.md",
        "python train.py -m +sweep=ablation "
        "\"hydra.sweeper.params.experiment='kcelectra_plain,polyglot_reasoning'\"",
    ): Row("cfg", r"seed: 0"),
    (
        "sweeps.md",
        "python train.py -m +sweep=tiny_ablation '~hydra.sweeper.params.experiment' "
        "hydra.sweeper.params.seed=0 "
        "data=kote_plain,kote_reasoning model=tiny_electra,tiny_neox",
    ): Row("cfg", r"model_type: electra"),
    (
        "sweeps.md",
        "python train.py -m +sweep=ablation data=kote_reasoning data.source.missing_reasoning=drop",
    ): Row("cfg", r"missing_reasoning: drop"),
    ("sweeps.md", "python train.py -m +sweep=ablation hydra.sweep.dir=multirun/2026-11-28/15-19-41"): Row(
        "cfg", r"seed: 0"
    ),
    ("sweeps.md", "wandb sync multirun/2026-11-28/15-19-41/*/wandb/offline-run-*"): Row("help", r"sync"),
    ("sweeps.md", 'pip install -e ".[sweeps]"'): Row("help", r"hydra-optuna-sweeper==1\.3\.0"),
    ("sweeps.md", "python train.py -m +sweep=optuna_lr_rank experiment=polyglot_reasoning"): Row(
        "cfg", r"name_or_path: EleutherAI/polyglot-ko-5\.8b"
    ),
    (
        "sweeps.md",
        "python train.py -m +sweep=optuna_lr_rank experiment=tiny_polyglot_plain lora=default "
        "hydra.sweeper.n_trials=4",
    ): Row("cfg", r"r: 16"),
}


def documented_commands() -> list[tuple[str, str]]:
    """(file name, command) for every command line in a code block, continuations joined, comments cut."""
    found = []
    for path in DOCS:
        in_block, pending = False, ""
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_block = not in_block
                continue
            if not in_block or not (pending or COMMAND.match(line)):
                continue
            pending = f"{pending} {line.strip()}" if pending else line.strip()
            if pending.endswith("\\"):
                pending = pending[:-1].rstrip()
                continue
            command = re.sub(r"\s+#\s.*$", "", pending)
            found.append((path.name, re.sub(r"\s+", " ", command).strip()))
            pending = ""
    return found


def test_the_table_has_one_row_per_documented_command_and_no_stale_rows():
    documented = set(documented_commands())
    assert documented - ROWS.keys() == set(), "commands printed in the docs without a row"
    assert ROWS.keys() - documented == set(), "rows for commands the docs no longer print"


# ---------------------------------------------------------------------------------------------------------
# fixtures: what placeholders are filled from


def run(
    argv: list[str], env: dict[str, str] | None = None, stdout_to: str | None = None
) -> subprocess.CompletedProcess:
    """Run from the repository root; ``stdout_to`` is the shell's ``> file`` (a file, not a terminal)."""
    environment = {**os.environ, **(env or {})}
    if stdout_to is None:
        return subprocess.run(argv, cwd=REPO, env=environment, capture_output=True, text=True)
    with open(stdout_to, "w", encoding="utf-8") as out:
        done = subprocess.run(argv, cwd=REPO, env=environment, stdout=out, stderr=subprocess.PIPE, text=True)
    return subprocess.CompletedProcess(
        done.args, done.returncode, Path(stdout_to).read_text("utf-8"), done.stderr
    )


@pytest.fixture(scope="module")
def places(
    small_kote_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A small run's last.ckpt, a two-job sweep, a comments file: what the docs' placeholders name."""
    root = tmp_path_factory.mktemp("docs")
    data = [f"paths.kote_dir={small_kote_dir}", f"paths.cache_dir={cache_dir}", *SMALL_DATA]
    done = run([sys.executable, "train.py", *data, f"hydra.run.dir={root / 'run'}"])
    assert done.returncode == 0, done.stderr[-2000:]
    sweep = root / "sweep"
    done = run([sys.executable, "train.py", "-m", "seed=0,1", *data, f"hydra.sweep.dir={sweep}"])
    assert done.returncode == 0, done.stderr[-2000:]
    job = root / "multirun" / "data=kote_plain,model=tiny_electra,seed=0" / "checkpoints"
    job.mkdir(parents=True)
    shutil.copy(root / "run" / "checkpoints" / "last.ckpt", job / "last.ckpt")
    (root / "comments.txt").write_text("아 진짜 어이가 없네\n너무 웃기다 ㅋㅋ\n", encoding="utf-8")
    return {
        "root": root,
        "ckpt": root / "run" / "checkpoints" / "last.ckpt",
        "sweep": sweep,
        "kote": small_kote_dir,
    }


def fill(command: str, places: dict[str, Path], reasoning: Path) -> str:
    """The command with its placeholders replaced by the fixtures' paths.

    ``../shared/data`` (the docs' example location of the data) becomes the data folder this session reads
    (``KOTE_DIR``'s parent), so the commands pass from a clone anywhere, as the Quickstart's do.
    """
    root = places["root"]
    for placeholder, value in (
        ("../shared/data/kote_reasoning/", f"{reasoning.parent}/"),
        ("../shared/data/kote", shared_kote_dir()),
        ("outputs/<date>/<time>/checkpoints/last.ckpt", places.get("ckpt")),
        ("ckpt_path=...", f"ckpt_path={places.get('ckpt')}"),
        ("multirun/<date>/<time>/data=", f"{root / 'multirun'}/data="),
        ("multirun/<date>/<time>", places.get("sweep")),
        ("/tmp/lr/sweep", places.get("sweep")),
        ("multirun/study", places.get("sweep")),
        ("input_file=comments.txt", f"input_file={root / 'comments.txt'}"),
        ("output_file=tags.jsonl", f"output_file={root / 'tags.jsonl'}"),
        ("data_file=mine.tsv", f"data_file={places.get('kote', root) / 'test.tsv'}"),
        (" reasoning.jsonl", f" {reasoning}"),
        ("--card reasoning.card.md", f"--card {root / 'reasoning.card.md'}"),
        ("> smoke.log", f"> {root / 'smoke.log'}"),
        ("'old.ckpt'", f"'{places.get('ckpt')}'"),
        ("'new.ckpt'", f"'{root / 'new.ckpt'}'"),
        ("<served name>", "my-model"),
    ):
        if placeholder in command:
            command = command.replace(placeholder, str(value))
    return command


def split_env(command: str) -> tuple[dict[str, str], list[str], str | None]:
    """Leading ``VAR=value`` pairs, the argv, and a ``> file`` stdout goes to (``nohup``, ``&`` dropped)."""
    words = shlex.split(command.removesuffix("&").strip())
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    words = [w for w in words if w not in ("nohup", "2>&1")]
    target = None
    if ">" in words:
        target = words[words.index(">") + 1]
        words = words[: words.index(">")]
    return env, words, target


def as_cfg(argv: list[str]) -> list[str]:
    """``--cfg job`` instead of running: ``-m`` dropped, each comma-separated sweep value cut to its first."""
    kept = []
    for word in argv:
        if word == "-m":
            continue
        key, sep, value = word.partition("=")
        if (
            sep
            and "," in value
            and not value.startswith(("'", "[", "{"))
            and not key.startswith(("hydra.", "+"))
        ):
            word = f"{key}={value.split(',')[0]}"
        kept.append(word)
    return [*kept, "--cfg", "job"]


CHEAP = {"cfg", "make", "help"}


def _params() -> list:
    return [
        pytest.param(
            key, id=f"{key[0]}:{key[1][:70]}", marks=() if ROWS[key].how in CHEAP else pytest.mark.slow
        )
        for key in ROWS
    ]


@pytest.mark.parametrize("key", _params())
def test_documented_command(key, request, tmp_path):
    row = ROWS[key]
    command = key[1]
    if row.how == "make":
        env, words, _ = split_env(command)
        done = run(["make", "-n", *words[1:]], env=env)
        assert done.returncode == 0, done.stderr
        assert re.search(row.line, done.stdout), done.stdout
        return
    if row.how == "help":
        check_tool(command, row)
        return
    needs_places = row.how in ("run", "small") and re.search(
        r"ckpt|multirun|/tmp/lr|comments|mine\.tsv", command
    )
    places = request.getfixturevalue("places") if needs_places or row.how == "small" else {"root": tmp_path}
    env, argv, target = split_env(fill(command, places, shared_reasoning_path()))
    argv = [sys.executable if w in ("python", ".venv/bin/python") else w for w in argv]
    script = next((w for w in argv if w in HYDRA_SCRIPTS), None)
    if row.how == "cfg":
        argv, target = as_cfg(argv), None
        if (
            "+launcher=slurm" in argv
            and importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None
        ):
            # an optional plugin (docs/scale.md: install it first): its group and keys are left out
            argv = [w for w in argv if w != "+launcher=slurm" and not w.startswith("hydra.launcher.")]
    elif script is not None and "--help" not in argv and "--cfg" not in argv:
        argv.append(
            f"hydra.sweep.dir={tmp_path / 'multirun'}"
            if "-m" in argv
            else f"hydra.run.dir={tmp_path / 'run'}"
        )
    if row.how == "small":
        cache = request.getfixturevalue("cache_dir")
        argv += [f"paths.kote_dir={places['kote']}", f"paths.cache_dir={cache}", *SMALL_DATA]
    done = run(argv, env=env, stdout_to=target)
    output = done.stdout + done.stderr
    assert done.returncode == row.status, output[-3000:]
    assert re.search(row.line, output), output[-3000:]


def check_tool(command: str, row: Row) -> None:
    """A tool outside the Hydra entry points answers --help; a pip extra is declared; export names one."""
    env, words, _ = split_env(command)
    if words[0] == "export":
        assert re.match(r"^[A-Z_]+=", words[1])
        return
    if words[0] == "pip":
        extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        extra = re.search(r"\[(\w+)\]", command).group(1)
        assert any(re.search(row.line, spec) for spec in extras[extra])
        return
    tool = (
        [str(Path(sys.executable).parent / "wandb"), words[1]]
        if words[0] == "wandb"
        else [sys.executable, words[1]]
    )
    done = run([*tool, "--help"], env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(row.line, done.stdout, re.IGNORECASE), done.stdout
