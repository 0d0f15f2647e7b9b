"""train.py → evaluate.py end to end for a generative method with LoRA on real rows (tiny GPT-NeoX, CPU)."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from hydra import compose, initialize_config_dir

from emoreason.evaluate import evaluate
from emoreason.labels import label_names
from emoreason.models.targets import read_labels
from emoreason.train import train
from tests.support.project import CONF_DIR
from tests.support.reasoning import TINY_NEOX_OVERRIDES

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


@pytest.fixture(scope="module")
def multitask_run(tmp_path_factory, reasoning_kote_dir, reasoning_path, cache_dir):
    out = tmp_path_factory.mktemp("multitask_lora")
    overrides = [
        f"paths.output_dir={out}",
        f"paths.cache_dir={cache_dir}",
        f"paths.kote_dir={reasoning_kote_dir}",
        f"paths.reasoning_path={reasoning_path}",
        "data=kote_reasoning",
        "data.source.split_scheme=val_holdout",
        "data.source.holdout_size=100",
        "data.source.verify_checksums=false",
        "data.source.download=false",
        "data.source.missing_reasoning=drop",
        "data.source.max_train_rows=16",
        "data.loader.max_length=32",
        "data.loader.eval_batch_size=128",
        *TINY_NEOX_OVERRIDES,
        "method=multitask",
        "method.max_new_tokens=24",
        "method.max_reasoning_tokens=32",
        "lora=default",
        "lora.r=4",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        "logger=csv",
        "~callbacks.progress_bar",
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return out, train(cfg)


def test_metrics_json_reports_unparseable_rate_and_generated_tokens(multitask_run):
    out, _ = multitask_run
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["method"] == "multitask" and saved["model"] == "tiny-gpt_neox"
    assert saved["data_sizes"] == {"train": 16, "val": 100, "test": 60}
    assert "training rows without reasoning dropped" in saved["data_sources"]["reasoning_rows"]
    for split in ("val", "test"):
        assert 0.0 <= saved[split]["unparseable_rate"] <= 1.0
        assert 0 < saved[split]["generated_tokens"] <= 24


def test_both_task_losses_and_the_unparseable_rate_are_logged(multitask_run):
    out, _ = multitask_run
    with (out / "csv" / "metrics.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    logged = {key for row in rows for key, value in row.items() if value}
    assert {"train/label_loss", "train/rationale_loss", "val/unparseable_rate", "val/macro_f1"} <= logged
    assert "val/loss" not in logged  # evaluation batches hold prompts only


@pytest.mark.parametrize(
    "target", [None, "emoreason.models.generative.MultitaskMethod"], ids=["as_saved", "former"]
)
def test_checkpoints_hold_adapters_only_and_evaluate_reproduces_the_test_figures(
    multitask_run, tmp_path, reasoning_kote_dir, reasoning_path, cache_dir, target
):
    """``former``: the checkpoint as one written before the method classes moved names its method."""
    out, report = multitask_run
    checkpoint = torch.load(report["best_checkpoint"], map_location="cpu", weights_only=True)
    keys = set(checkpoint["state_dict"])
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    ckpt_path = report["best_checkpoint"]
    if target is not None:
        checkpoint["emoreason"]["config"]["method"]["_target_"] = target
        ckpt_path = tmp_path / "former.ckpt"
        torch.save(checkpoint, ckpt_path)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="evaluate",
            overrides=[
                f"paths.output_dir={tmp_path}",
                f"paths.kote_dir={reasoning_kote_dir}",
                f"paths.cache_dir={cache_dir}",
                f"paths.reasoning_path={reasoning_path}",
                f"ckpt_path={ckpt_path}",
            ],
        )
    rescored = evaluate(cfg)
    assert rescored["test"] == report["test"] and rescored["threshold"] == report["threshold"]
    predictions = (tmp_path / "test_predictions.jsonl").read_text(encoding="utf-8")
    assert predictions == (out / "test_predictions.jsonl").read_text(encoding="utf-8")  # same text, too


def test_test_predictions_hold_what_the_model_wrote_and_agree_with_the_metrics(multitask_run):
    out, report = multitask_run
    lines = (out / "test_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == report["data_sizes"]["test"]
    assert all(isinstance(r["generated"], str) for r in records)
    # The label line it wrote, parsed, is the prediction (generate mode scores are 0/1).
    parsed = [read_labels(r["generated"], 0)[0] for r in records]
    assert [r["predicted"] for r in records] == [label_names(ids) for ids in parsed]


def test_tagging_a_comment_shows_the_models_text(multitask_run, tmp_path, reasoning_kote_dir, cache_dir):
    _, report = multitask_run
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="evaluate",
            overrides=[
                f"paths.output_dir={tmp_path}",
                f"paths.kote_dir={reasoning_kote_dir}",
                f"paths.cache_dir={cache_dir}",
                f"ckpt_path={report['best_checkpoint']}",
                "text='진짜 너무 화가 난다'",
                "threshold=0.5",
            ],
        )
    (tagged,) = evaluate(cfg)["tagged"]
    assert tagged["labels"] == label_names(read_labels(tagged["generated"], 0)[0])
