"""The callback that leaves every LoRA run's best weights in ``<run>/adapter/`` (PEFT format, safetensors)."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from emoreason.training.adapters import adapted_network, export_adapter
from emoreason.training.checkpoints import consolidate_zero_checkpoint, load_checkpoint
from emoreason.training.module import EmotionModule

log = logging.getLogger(__name__)


class AdapterExport(L.Callback):
    """At the end of fit, write the checkpoint callback's best file (``last.ckpt`` without one) as an adapter
    folder, so a LoRA run can be shared or uploaded without a pickle. A run without LoRA writes nothing.

    Reads the checkpoint from disk rather than the module: the module holds the last weights, not the best,
    and under DeepSpeed they are partitioned. A ZeRO folder (written by this run) is consolidated first; the
    evaluation that follows in train.py reuses the consolidated file.
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    @rank_zero_only
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not isinstance(pl_module, EmotionModule) or adapted_network(pl_module.model) is None:
            return
        checkpoint = trainer.checkpoint_callback
        best = getattr(checkpoint, "best_model_path", "") or ""
        if not (best and Path(best).exists()):
            log.warning("no checkpoint was written, so no LoRA adapter folder either (%s)", self.dirpath)
            return
        own = consolidate_zero_checkpoint(best) if Path(best).is_dir() else best  # this run wrote it
        saved = load_checkpoint(own)
        export_adapter(pl_module.model, saved["state_dict"], saved["emoreason"], self.dirpath)
        log.info("LoRA adapters of %s written to %s (PEFT format, safetensors)", best, self.dirpath)
