from pathlib import Path

import pytest
import torch

from emoreason.training import checkpoints
from emoreason.training.checkpoints import checkpoint_file, load_checkpoint


def test_plain_checkpoint_file_is_read_as_is(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "emoreason": {"config": {}}}, path)
    assert checkpoint_file(path) == path
    assert load_checkpoint(path)["state_dict"]["w"].tolist() == [1.0, 1.0]


def test_zero_folder_is_consolidated_once_beside_it(tmp_path, monkeypatch):
    folder = tmp_path / "epoch01.ckpt"
    folder.mkdir()
    calls: list[tuple[Path, Path]] = []

    def fake_convert(src, dst):
        calls.append((Path(src), Path(dst)))
        torch.save({"state_dict": {"lora_A": torch.zeros(1)}, "emoreason": {}}, dst)

    import lightning.pytorch.utilities.deepspeed as ds_utils

    monkeypatch.setattr(ds_utils, "convert_zero_checkpoint_to_fp32_state_dict", fake_convert)
    assert load_checkpoint(folder)["state_dict"].keys() == {"lora_A"}
    assert load_checkpoint(folder)["emoreason"] == {}
    assert len(calls) == 1 and calls[0][0] == folder  # the second load reuses the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch01.ckpt", "epoch01.ckpt.fp32.ckpt"]


def test_an_interrupted_consolidation_leaves_nothing_to_mistake_for_a_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "epoch01.ckpt"
    folder.mkdir()

    def killed_while_writing(src, dst):
        Path(dst).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    import lightning.pytorch.utilities.deepspeed as ds_utils

    monkeypatch.setattr(ds_utils, "convert_zero_checkpoint_to_fp32_state_dict", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        checkpoint_file(folder)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch01.ckpt"]


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.checkpoint_file(tmp_path / "nope.ckpt")
