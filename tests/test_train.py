"""train(cfg) and evaluate(cfg) end to end on real KOTE rows with the embedded tiny ELECTRA (CPU)."""

import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir

import emoreason.train
from emoreason.data.kote import KoteRow, read_kote_tsv
from emoreason.evaluate import evaluate
from emoreason.evaluation.files import FLOORS_FILE
from emoreason.labels import LABELS
from emoreason.models.backbones import BackboneUnavailableError, PretrainedBackbone
from emoreason.train import limited_rows, train
from tests.support.project import CONF_DIR, SMALL_RUN, compose_small_run
from tests.support.sweeps import wandb_exit_code, wandb_records

pytestmark = pytest.mark.shared_data


@pytest.fixture
def small_run(compose_train, small_kote_dir):
    def _compose(*overrides):
        return compose_train(*SMALL_RUN, f"paths.kote_dir={small_kote_dir}", *overrides)

    return _compose


def compose_evaluate(tmp_path, kote_dir, cache_dir, *overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="evaluate",
            overrides=[
                f"paths.output_dir={tmp_path}",
                f"paths.kote_dir={kote_dir}",
                f"paths.cache_dir={cache_dir}",
                *overrides,
            ],
        )


def test_fast_dev_run_writes_a_complete_metrics_json(small_run, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="emoreason"):
        report = train(small_run("debug=fast_dev_run"))
    (memory_plan,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Memory plan:")]
    assert "full, DDP/single, 1 GPU(s) x 1 node(s), micro-batch 32 x 128 tokens" in memory_plan
    assert report["global_step"] == 1
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["split_scheme"] == "val_holdout"
    assert saved["data_sizes"] == {"train": 64, "val": 200, "test": 600}
    assert saved["model"] == "tiny-electra" and saved["seed"] == 0
    figures = {"macro_f1", "macro_f1_supported", "micro_f1", "weighted_f1", "per_label_f1"}
    assert set(saved["test"]["tuned"]) == figures
    assert len(saved["test"]["tuned"]["per_label_f1"]) == 44 and 0 < saved["threshold"] < 1
    assert saved["wall_time_s"] > 0 and (tmp_path / "run" / "config.yaml").exists()
    lines = (tmp_path / "run" / "test_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 128 and not any("generated" in r for r in records)  # a classifier writes none
    assert saved["test"]["rows"] == saved["val"]["rows"] == 128  # fast_dev_run: one batch scored, too
    assert saved["tested_weights"]["weights"] == "end of training"  # fast_dev_run saves no checkpoint
    gold = torch.tensor([[label in r["gold"] for label in LABELS] for r in records])
    predicted = torch.tensor([[label in r["predicted"] for label in LABELS] for r in records])
    true_positives = (gold & predicted).sum().item()
    micro_f1 = 2 * true_positives / (gold.sum().item() + predicted.sum().item())
    assert micro_f1 == pytest.approx(saved["test"]["tuned"]["micro_f1"], abs=1e-6)  # the reported figures


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_kote_dir, cache_dir):
    """One short real training shared by the round-trip, resume and tagging tests."""
    out = tmp_path_factory.mktemp("trained")
    cfg = compose_small_run(
        out, small_kote_dir, cache_dir, "trainer.max_epochs=2", "data.source.max_train_rows=256"
    )
    return out, train(cfg)


def test_train_then_evaluate_gives_identical_metrics(trained, tmp_path, small_kote_dir, cache_dir):
    _, report = trained
    rescored = evaluate(
        compose_evaluate(tmp_path, small_kote_dir, cache_dir, f"ckpt_path={report['best_checkpoint']}")
    )
    assert rescored["threshold"] == report["threshold"]
    assert rescored["test"] == report["test"]
    assert (tmp_path / "metrics.json").exists()
    table = (tmp_path / "per_label_f1.md").read_text(encoding="utf-8")
    assert table.count("\n| ") == 2 + 3 + 44  # header and separator rows, 3 averages, 44 labels


def test_resume_from_last_ckpt_continues_step_count(trained, small_run):
    out, report = trained
    last = out / "checkpoints" / "last.ckpt"
    steps = torch.load(last, weights_only=True)["global_step"]
    assert steps == report["global_step"] > 0
    resumed = train(small_run(f"ckpt_path={last}", "trainer.max_epochs=3", "data.source.max_train_rows=256"))
    assert resumed["global_step"] == steps + steps // 2  # exactly one more epoch of the same batches


@pytest.mark.slow
def test_final_scoring_honours_the_val_and_test_batch_limits(small_run, small_kote_dir, tmp_path, caplog):
    limits = ("+trainer.limit_val_batches=1", "+trainer.limit_test_batches=2")
    with caplog.at_level(logging.INFO, logger="emoreason"):
        report = train(small_run("trainer.max_epochs=1", "data.source.max_train_rows=64", *limits))
    assert report["val"]["rows"] == 128 and report["test"]["rows"] == 256  # eval batches of 128 rows
    lines = (tmp_path / "run" / "test_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    first_rows = read_kote_tsv(small_kote_dir / "test.tsv")[:256]
    assert [json.loads(line)["id"] for line in lines] == [row.id for row in first_rows]
    assert "final scoring reads 256 of 600 test rows (trainer.limit_test_batches=2)" in caplog.text


@pytest.mark.parametrize(("limit", "kept"), [(2, 256), (0.5, 256), (0.1, 0), (1.0, 600), (10, 600), (0, 0)])
def test_batch_limits_mean_what_they_mean_to_lightning(limit, kept):
    """An int is a number of batches, a float a fraction of them (600 rows: 5 batches of 128)."""
    rows = [KoteRow(str(i), "댓글", (0,)) for i in range(600)]
    assert limited_rows(rows, limit, 128, "test") == rows[:kept]


def test_tagging_text_and_file(trained, tmp_path, small_kote_dir, cache_dir):
    _, report = trained
    ckpt = f"ckpt_path={report['best_checkpoint']}"
    one = evaluate(compose_evaluate(tmp_path, small_kote_dir, cache_dir, ckpt, "text='진짜 너무 화가 난다'"))
    assert len(one["tagged"]) == 1 and len(one["tagged"][0]["scores"]) == 44
    comments = tmp_path / "comments.txt"
    comments.write_text("정말 고맙습니다\n\n어이가 없네\n", encoding="utf-8")
    out_file = tmp_path / "tags.jsonl"
    evaluate(
        compose_evaluate(
            tmp_path,
            small_kote_dir,
            cache_dir,
            ckpt,
            f"input_file={comments}",
            f"output_file={out_file}",
            "threshold=0.2",
        )
    )
    rows = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["정말 고맙습니다", "어이가 없네"]
    assert all(set(r["labels"]) == {k for k, v in r["scores"].items() if v > 0.2} for r in rows)


def test_wandb_offline_run_files_hold_the_logged_metrics(small_run, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "fake-key-must-not-leak-0000000000")
    report = train(small_run("logger=wandb", "trainer.max_epochs=1", "data.source.max_train_rows=64"))
    (run_file,) = (tmp_path / "run").rglob("offline-run-*/run-*.wandb")
    logged = {  # the last value of every key in the run's history records
        item.key or "/".join(item.nested_key): json.loads(item.value_json)
        for record in wandb_records(run_file)
        if record.HasField("history")
        for item in record.history.item
    }
    assert logged["test/macro_f1"] == pytest.approx(report["test"]["tuned"]["macro_f1"])
    assert logged["test/micro_f1@0.5"] == pytest.approx(report["test"]["at_0.5"]["micro_f1"])
    assert "val/loss" in logged and "test/f1/기쁨" in logged
    assert wandb_exit_code(tmp_path / "run") == 0  # finished; a crash ends with 1 (tests/sweeps/test_jobs.py)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert b"fake-key-must-not-leak" not in path.read_bytes(), path


def test_pretrained_backbone_offline_error_suggests_the_embedded_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneUnavailableError, match="model=tiny_electra"):
        PretrainedBackbone("beomi/KcELECTRA-base-v2022").load_tokenizer([], None)


def test_an_error_inside_training_is_never_swallowed_by_the_wandb_cleanup(monkeypatch):
    from emoreason.training.loggers import finishing_wandb

    monkeypatch.setitem(sys.modules, "wandb", None)  # as on a machine without wandb: `import wandb` fails
    with pytest.raises(ZeroDivisionError), finishing_wandb():
        _ = 1 / 0


def test_under_deepspeed_the_best_weights_go_into_a_fresh_whole_module(trained):
    """ZeRO-3 leaves each rank's parameters empty (partitioned); the final test needs whole ones."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.strategies import DeepSpeedStrategy

    from emoreason.components import load_checkpoint_parts
    from emoreason.train import _best_weights

    _, report = trained
    assert report["tested_weights"]["weights"] == "best"
    parts = load_checkpoint_parts(report["best_checkpoint"])
    expected = {k: v.clone() for k, v in parts.module.state_dict().items()}
    for param in parts.module.parameters():
        param.data = torch.empty(0)  # what ZeRO-3 leaves on a rank outside a gather
    callback = ModelCheckpoint(monitor="val/macro_f1_tuned")
    callback.best_model_path = report["best_checkpoint"]
    strategy = DeepSpeedStrategy(stage=3, parallel_devices=[torch.device("cpu")])
    rank0 = SimpleNamespace(checkpoint_callbacks=[callback], strategy=strategy, is_global_zero=True)
    restored, tested = _best_weights(rank0, parts)
    assert tested["checkpoint"] == report["best_checkpoint"] and restored.module is not parts.module
    state = restored.module.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    other_rank = SimpleNamespace(checkpoint_callbacks=[callback], strategy=strategy, is_global_zero=False)
    assert _best_weights(other_rank, parts) == (parts, tested)  # only rank 0 tests: nothing built or read


@pytest.mark.slow
def test_floors_are_written_before_metrics_json_marks_the_job_finished(small_run, monkeypatch):
    """A job killed while its floors were computed (up to minutes) counted as finished without floors.json."""
    floors_then = []
    write_metrics = emoreason.train.write_metrics

    def checking(output_dir, metrics):
        floors_then.append((Path(output_dir) / FLOORS_FILE).exists())
        return write_metrics(output_dir, metrics)

    monkeypatch.setattr(emoreason.train, "write_metrics", checking)
    train(small_run("data.source.max_train_rows=64", "trainer.max_epochs=1"))
    assert floors_then == [True]
