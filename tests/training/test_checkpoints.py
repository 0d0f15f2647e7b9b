"""Checkpoints load without running code: weights-only reading, trust_checkpoint, ZeRO folders, the target
allow-list, and re-saving a trusted file — unit cases here, end to end through train.py/evaluate.py below."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

from emoreason.evaluate import evaluate
from emoreason.train import train
from emoreason.training import checkpoints
from emoreason.training.checkpoints import (
    ALLOWED_TARGETS,
    CONSOLIDATED_KEYS,
    MOVED_TARGETS,
    CheckpointError,
    check_stored_targets,
    checkpoint_file,
    consolidate_zero_checkpoint,
    current_targets,
    load_checkpoint,
    resave_trusted,
    resume_weights_only,
)
from tests.support.project import CONF_DIR, REPO, compose_small_run


class RunsOnLoad:
    """Unpickling this creates ``marker`` (``open(marker, "w")``): stands in for any code a pickle may run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _with_payload(source: dict, path: Path, marker: Path) -> Path:
    """``source`` plus one pickled object in its ``emoreason`` entry, as the issue's attacker added it."""
    torch.save({**source, "emoreason": {**source["emoreason"], "note": RunsOnLoad(marker)}}, path)
    return path


def _plain_checkpoint(path: Path) -> Path:
    torch.save({"state_dict": {"w": torch.ones(2)}, "emoreason": {"config": {}, "tokenizer": {}}}, path)
    return path


def test_plain_checkpoint_file_is_read_as_is(tmp_path):
    path = _plain_checkpoint(tmp_path / "last.ckpt")
    assert checkpoint_file(path) == path
    assert load_checkpoint(path)["state_dict"]["w"].tolist() == [1.0, 1.0]


def test_a_pickled_object_is_refused_naming_the_file_and_the_option_and_never_runs(tmp_path):
    marker = tmp_path / "marker"
    path = _with_payload(torch.load(_plain_checkpoint(tmp_path / "a.ckpt")), tmp_path / "shared.ckpt", marker)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: refused")
    assert "trust_checkpoint=true" in message and "the global io.open" in message
    assert not marker.exists()


def test_trust_checkpoint_unpickles_in_full_with_a_warning(tmp_path, caplog):
    marker = tmp_path / "marker"
    path = _with_payload(torch.load(_plain_checkpoint(tmp_path / "a.ckpt")), tmp_path / "shared.ckpt", marker)
    with caplog.at_level(logging.WARNING, logger="emoreason"):
        loaded = load_checkpoint(path, trust=True)
    assert marker.exists()  # documented: trusting a file runs whatever it holds
    assert loaded["state_dict"]["w"].tolist() == [1.0, 1.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"unpickling {path} in full" in w and "io.open" in w for w in warnings)


def test_an_unreadable_file_is_named(tmp_path):
    path = tmp_path / "cut.ckpt"
    path.write_bytes(_plain_checkpoint(tmp_path / "a.ckpt").read_bytes()[:200])
    with pytest.raises(CheckpointError, match=rf"^{path}: not a readable checkpoint"):
        load_checkpoint(path)


def test_a_truncated_checkpoint_is_named_when_memory_mapped_too(tiny_checkpoint, tmp_path):
    """Cut to 10 kB, a real checkpoint failed to memory-map with a bare OSError (Errno 22) naming no file."""
    path = tmp_path / "last.ckpt"
    path.write_bytes(tiny_checkpoint.read_bytes()[:10_000])
    for mmap in (True, False):
        with pytest.raises(CheckpointError, match=rf"^{path}: not a readable checkpoint"):
            load_checkpoint(path, mmap=mmap)


def _fake_converter(monkeypatch, calls: list, marker: Path | None = None) -> None:
    """Lightning's converter as it behaves: writes the output file and returns the client state, which
    holds DeepSpeed's bookkeeping (here also an object only full unpickling reads)."""

    def convert(src, dst):
        calls.append((Path(src), Path(dst)))
        state = {
            "state_dict": {"lora_A": torch.zeros(1)},
            "emoreason": {"config": {"seed": 0}, "tokenizer": {}},
            "epoch": 1,
            "global_step": 8,
            "param_shapes": [OrderedDict(w=torch.Size([1]))],
            "ds_config": RunsOnLoad(marker or Path(dst).with_name("never")),
        }
        torch.save(state, dst)
        return state

    import lightning.pytorch.utilities.deepspeed as ds_utils

    monkeypatch.setattr(ds_utils, "convert_zero_checkpoint_to_fp32_state_dict", convert)


def test_a_zero_folder_is_consolidated_once_into_plain_data(tmp_path, monkeypatch):
    folder = tmp_path / "epoch01.ckpt"
    folder.mkdir()
    calls: list = []
    _fake_converter(monkeypatch, calls)
    consolidated = consolidate_zero_checkpoint(folder)  # what train.py does with the folder it wrote
    assert consolidated == tmp_path / "epoch01.ckpt.fp32.ckpt"
    saved = torch.load(consolidated, weights_only=True)
    assert set(saved) == set(CONSOLIDATED_KEYS) - {"pytorch-lightning_version"}
    assert load_checkpoint(folder)["state_dict"].keys() == {"lora_A"}  # the folder's path finds it
    assert consolidate_zero_checkpoint(folder) == consolidated and len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch01.ckpt", "epoch01.ckpt.fp32.ckpt"]


def test_a_raw_zero_folder_is_read_only_with_trust(tmp_path, monkeypatch, caplog):
    folder = tmp_path / "epoch01.ckpt"
    folder.mkdir()
    calls: list = []
    _fake_converter(monkeypatch, calls)
    with pytest.raises(
        CheckpointError, match=rf"^{folder}: refused: a DeepSpeed ZeRO folder.*trust_checkpoint=true"
    ):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="DeepSpeed resumes from a ZeRO folder by unpickling"):
        resume_weights_only(folder)
    assert calls == []
    with caplog.at_level(logging.WARNING, logger="emoreason"):
        assert load_checkpoint(folder, trust=True)["global_step"] == 8
        assert resume_weights_only(folder, trust=True) is False
    assert len(calls) == 1
    assert any(f"unpickling the DeepSpeed ZeRO folder {folder}" in r.getMessage() for r in caplog.records)


def test_an_interrupted_consolidation_leaves_nothing_to_mistake_for_a_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "epoch01.ckpt"
    folder.mkdir()

    def killed_while_writing(src, dst):
        Path(dst).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    import lightning.pytorch.utilities.deepspeed as ds_utils

    monkeypatch.setattr(ds_utils, "convert_zero_checkpoint_to_fp32_state_dict", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        consolidate_zero_checkpoint(folder)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch01.ckpt"]


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.checkpoint_file(tmp_path / "nope.ckpt")


def test_resume_checks_the_file_before_lightning_reads_it(tmp_path):
    marker = tmp_path / "marker"
    safe = _plain_checkpoint(tmp_path / "a.ckpt")
    assert resume_weights_only(None) is True and resume_weights_only(safe) is True
    unsafe = _with_payload(torch.load(safe), tmp_path / "shared.ckpt", marker)
    with pytest.raises(CheckpointError, match="trust_checkpoint=true"):
        resume_weights_only(unsafe)
    assert not marker.exists()
    assert resume_weights_only(unsafe, trust=True) is False
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(CheckpointError, match="adapter folder holds no training state"):
        resume_weights_only(tmp_path / "adapter", trust=True)


def test_resave_trusted_turns_an_old_checkpoint_into_plain_data(tmp_path):
    old = tmp_path / "old.ckpt"
    config = OmegaConf.create({"seed": 3, "model": {"init_seed": "${seed}"}})
    torch.save({"state_dict": {"w": torch.ones(2)}, "emoreason": {"config": config}, "epoch": 2}, old)
    with pytest.raises(CheckpointError, match="omegaconf"):
        load_checkpoint(old)
    resave_trusted(old, tmp_path / "new.ckpt")
    new = torch.load(tmp_path / "new.ckpt", weights_only=True)
    assert new["emoreason"]["config"] == {"seed": 3, "model": {"init_seed": "${seed}"}}
    assert new["epoch"] == 2 and new["state_dict"]["w"].tolist() == [1.0, 1.0]


def test_resave_names_what_it_cannot_store_as_plain_data(tmp_path):
    old = tmp_path / "old.ckpt"
    torch.save({"emoreason": {"config": {"when": Path("x")}}}, old)
    with pytest.raises(CheckpointError, match=r"old.ckpt.emoreason.config.when holds a pathlib\.\w*Path"):
        resave_trusted(old, tmp_path / "new.ckpt")
    assert not (tmp_path / "new.ckpt").exists()


@pytest.mark.parametrize(
    ("config", "key", "target"),
    [
        ({"model": {"_target_": "os.system", "command": "touch x"}}, "model._target_", "os.system"),
        (
            {
                "method": {
                    "_target_": "emoreason.models.methods.classifier.ClassifierMethod",
                    "x": {"_target_": "eval"},
                }
            },
            "method.x._target_",
            "eval",
        ),
        ({"name": "posix.system", "lora": {"_target_": "${name}"}}, "lora._target_", "posix.system"),
        (
            {"data": {"source": {"_target_": "emoreason.io.write_text_atomic", "path": "~/.bashrc"}}},
            "data.source._target_",
            "emoreason.io.write_text_atomic",
        ),
    ],
)
def test_a_stored_target_outside_the_allow_list_is_refused(config, key, target):
    with pytest.raises(CheckpointError, match=rf"^run\.ckpt: stored config {key}='{target}' is not one of"):
        check_stored_targets(config, "run.ckpt")


@pytest.mark.parametrize(("old", "new"), sorted(MOVED_TARGETS.items()))
def test_a_class_stored_under_its_former_path_is_read_as_the_class_it_moved_to(old, new):
    stored = {"method": {"_target_": old, "inference": "score"}, "tags": [{"_target_": old}], "seed": 3}
    current = current_targets(stored)
    assert current == {
        "method": {"_target_": new, "inference": "score"},
        "tags": [{"_target_": new}],
        "seed": 3,
    }
    assert stored["method"]["_target_"] == old  # the stored config itself is left as it was
    check_stored_targets(current, "old.ckpt")  # the class it names now is allowed
    assert get_class(new).__qualname__ == old.rsplit(".", 1)[-1]
    with pytest.raises(CheckpointError, match=rf"method._target_='{old}' is not one of"):
        check_stored_targets(stored, "old.ckpt")  # only through the table


def test_every_target_the_configs_name_is_allowed():
    named = {
        node["_target_"] if "_target_" in node else node["source"]["_target_"]
        for group in ("data", "model", "method", "lora", "optim", "scheduler")
        for path in (CONF_DIR / group).glob("*.yaml")
        if (node := yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        and ("_target_" in node or "source" in node)
    }
    assert named == ALLOWED_TARGETS


# ----------------------------------------------------------------------------- end to end


def _evaluate_cfg(tmp_path, kote_dir, cache_dir, *overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="evaluate",
            overrides=[
                f"paths.output_dir={tmp_path / 'eval'}",
                f"paths.kote_dir={kote_dir}",
                f"paths.cache_dir={cache_dir}",
                "threshold=0.5",
                *overrides,
            ],
        )


@pytest.mark.slow
@pytest.mark.shared_data
def test_evaluate_py_refuses_a_shared_checkpoint_with_a_pickled_object(
    tiny_checkpoint, tmp_path, small_kote_dir
):
    marker = tmp_path / "marker"
    shared = _with_payload(torch.load(tiny_checkpoint, weights_only=True), tmp_path / "shared.ckpt", marker)
    result = subprocess.run(
        [
            sys.executable,
            "evaluate.py",
            f"ckpt_path={shared}",
            f"paths.kote_dir={small_kote_dir}",
            f"hydra.run.dir={tmp_path / 'eval'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"evaluate.py: error: {shared}: refused:") and "trust_checkpoint=true" in line
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.shared_data
def test_with_trust_checkpoint_evaluation_unpickles_it_and_scores(
    tiny_checkpoint, tmp_path, small_kote_dir, cache_dir
):
    marker = tmp_path / "marker"
    shared = _with_payload(torch.load(tiny_checkpoint, weights_only=True), tmp_path / "shared.ckpt", marker)
    trusted = evaluate(
        _evaluate_cfg(tmp_path, small_kote_dir, cache_dir, f"ckpt_path={shared}", "trust_checkpoint=true")
    )
    assert marker.exists()
    clean = evaluate(_evaluate_cfg(tmp_path, small_kote_dir, cache_dir, f"ckpt_path={tiny_checkpoint}"))
    assert trusted["test"] == clean["test"]


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_checkpoint_naming_the_former_method_path_evaluates_as_before(
    tiny_checkpoint, tmp_path, small_kote_dir, cache_dir
):
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    method = checkpoint["emoreason"]["config"]["method"]
    assert method["_target_"] == "emoreason.models.methods.classifier.ClassifierMethod"
    method["_target_"] = "emoreason.models.methods.ClassifierMethod"  # as checkpoints before the move name it
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    then = evaluate(_evaluate_cfg(tmp_path, small_kote_dir, cache_dir, f"ckpt_path={old}"))
    now = evaluate(_evaluate_cfg(tmp_path, small_kote_dir, cache_dir, f"ckpt_path={tiny_checkpoint}"))
    assert then["method"] == "classifier" and then["test"] == now["test"]


@pytest.mark.slow
@pytest.mark.shared_data
def test_evaluation_refuses_a_stored_target_outside_the_allow_list(
    tiny_checkpoint, tmp_path, small_kote_dir, cache_dir
):
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["emoreason"]["config"]["model"]["_target_"] = "os.system"
    edited = tmp_path / "edited.ckpt"
    torch.save(checkpoint, edited)
    with pytest.raises(CheckpointError, match=rf"^{edited}: stored config model._target_='os.system'"):
        evaluate(
            _evaluate_cfg(tmp_path, small_kote_dir, cache_dir, f"ckpt_path={edited}", "trust_checkpoint=true")
        )


@pytest.mark.slow
@pytest.mark.shared_data
def test_train_py_refuses_to_resume_from_a_file_with_a_pickled_object(
    tiny_checkpoint, tmp_path, small_kote_dir, cache_dir
):
    marker = tmp_path / "marker"
    shared = _with_payload(torch.load(tiny_checkpoint, weights_only=True), tmp_path / "shared.ckpt", marker)
    cfg = compose_small_run(
        tmp_path / "run", small_kote_dir, cache_dir, "data.source.max_train_rows=64", f"ckpt_path={shared}"
    )
    with pytest.raises(CheckpointError, match=rf"^{shared}: refused"):
        train(cfg)
    assert not marker.exists()
