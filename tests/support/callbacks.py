"""A Lightning callback that stands in for a kill in the middle of a run, for the resume tests."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class InterruptOnce(L.Callback):
    """Append each epoch's number to ``epochs_file`` as it starts; at ``epoch``, while ``marker`` exists,
    delete it and raise, as a killed job would stop there. The rerun, with the same config, goes through."""

    def __init__(self, epochs_file: str, marker: str, epoch: int) -> None:
        self.epochs_file, self.marker, self.epoch = Path(epochs_file), Path(marker), epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with self.epochs_file.open("a", encoding="utf-8") as handle:
            handle.write(f"{trainer.current_epoch}\n")
        if trainer.current_epoch == self.epoch and self.marker.exists():
            self.marker.unlink()
            raise RuntimeError(f"interrupted at the start of epoch {self.epoch}")
