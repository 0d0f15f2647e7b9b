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
    assert calls == [(folder, tmp_path / "epoch01.ckpt.fp32.ckpt")]  # second load reuses the file


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.checkpoint_file(tmp_path / "nope.ckpt")
