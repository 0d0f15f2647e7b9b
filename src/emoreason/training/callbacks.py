"""Lightning callbacks of our own (the stock ones are configured in ``conf/callbacks``)."""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.strategies import DeepSpeedStrategy

from emoreason.training.memory import Precision, ZeroSetup, plan_network, visible_gpu_memory
from emoreason.training.strategies import zero_of_deepspeed_config

log = logging.getLogger(__name__)

PLANNED_PRECISION: dict[str, Precision] = {
    "bf16-mixed": "bf16-mixed",
    "16-mixed": "bf16-mixed",
    "32-true": "32-true",
}
"""Trainer precisions the planner models (fp16 mixed holds the same bytes as bf16 mixed)."""


class MemoryPlanPrinter(L.Callback):
    """Log the memory plan of the run about to train (rank 0), warning when it will not fit the GPUs.

    Runs in ``setup``: after Lightning has started every process and before the strategy wraps, shards or
    moves the model, so a plan that does not fit is reported before the first allocation fails. Every
    figure comes from the live objects: the built network (LoRA, heads, gradient checkpointing), the
    strategy's own DeepSpeed config, the Trainer's devices, nodes and precision, and the GPUs visible.
    """

    def __init__(self, micro_batch_size: int, seq_len: int) -> None:
        self.micro_batch_size = micro_batch_size
        self.seq_len = seq_len

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not trainer.is_global_zero:
            return
        precision = PLANNED_PRECISION.get(str(trainer.precision))
        strategy = trainer.strategy
        zero = (
            zero_of_deepspeed_config(strategy.config)
            if isinstance(strategy, DeepSpeedStrategy)
            else ZeroSetup()
        )
        if precision is None or (zero.stage and precision != "bf16-mixed"):
            log.info("memory plan: not modelled for precision %s with this strategy", trainer.precision)
            return
        memory_plan = plan_network(
            pl_module,
            zero,
            trainer.num_devices,
            trainer.num_nodes,
            micro_batch_size=self.micro_batch_size,
            seq_len=self.seq_len,
            precision=precision,
            visible_gpus=visible_gpu_memory()
            if isinstance(trainer.accelerator, CUDAAccelerator)
            else (0, None),
        )
        log.log(logging.WARNING if memory_plan.fits is False else logging.INFO, "%s", memory_plan.render())
