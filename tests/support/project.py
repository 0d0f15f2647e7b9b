"""Where the repository, its configs and the shared KOTE data are; KOTE-format files; the
overrides of a small real run.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from emoreason.models.lora import LoraSettings


REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "conf"
SHARED = REPO.parent / "shared" / "data"


def lora_settings(**overrides: object) -> LoraSettings:
    """``conf/lora/default.yaml`` (the one place GPT-NeoX's LoRA targets are written), with ``overrides``."""
    return instantiate(OmegaConf.load(CONF_DIR / "lora" / "default.yaml"), **overrides, _convert_="all")


def shared_kote_dir() -> Path:
    """KOTE_DIR, else ../shared/data/kote (checked once at session start, :func:`pytest_configure`)."""
    return Path(os.environ.get("KOTE_DIR", SHARED / "kote"))


def shared_reasoning_path() -> Path:
    """KOTE_REASONING_PATH, else kote_reasoning/reasoning.jsonl beside the KOTE folder (as conf/paths)."""
    default = shared_kote_dir() / ".." / "kote_reasoning" / "reasoning.jsonl"
    return Path(os.environ.get("KOTE_REASONING_PATH", default))


def missing_data() -> str | None:
    """What test data is missing, and which variable to set; None when both are there."""
    kote, reasoning = shared_kote_dir(), shared_reasoning_path()
    if not all((kote / f"{split}.tsv").is_file() for split in ("val", "test")):
        return f"KOTE data not found at {kote}: set KOTE_DIR to a folder with KOTE's val.tsv and test.tsv"
    if not reasoning.is_file():
        return (
            f"reasoning sample not found at {reasoning}: set KOTE_REASONING_PATH (default: "
            "kote_reasoning/reasoning.jsonl beside KOTE_DIR)"
        )
    return None


def write_kote_tsv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """Rows as KOTE stores them: tab-separated CSV, a text holding ``"`` quoted with inner quotes doubled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter="\t", lineterminator="\n").writerows(rows)
    return path


SMALL_RUN = (
    "data.source.split_scheme=val_holdout",
    "data.source.holdout_size=200",
    "data.source.verify_checksums=false",
    "data.source.download=false",
    "logger=csv",
    "~callbacks.progress_bar",
)


def compose_small_run(output_dir: Path, kote_dir: Path, cache_dir: Path, *overrides: str) -> DictConfig:
    """conf/train.yaml as a small real run (SMALL_RUN) over ``kote_dir``; extra overrides win.

    For session- and module-scoped fixtures, which cannot take the function-scoped ``compose_train``.
    """
    paths = (f"paths.kote_dir={kote_dir}", f"paths.cache_dir={cache_dir}", f"paths.output_dir={output_dir}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[*SMALL_RUN, *paths, *overrides])
