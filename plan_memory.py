"""Print the memory plan (emoreason.training.memory) for the configured model, method, strategy and devices.

Why a separate command: deciding between LoRA, ZeRO stages, offload and node counts should take a second,
not a failed multi-GPU job. Configuration: conf/plan_memory.yaml.
"""

import hydra
from omegaconf import DictConfig

from emoreason.training.memory import GIB, plan, visible_gpu_memory
from emoreason.training.strategies import zero_setup


@hydra.main(config_path="conf", config_name="plan_memory", version_base="1.3")
def main(cfg: DictConfig) -> None:
    p = cfg.plan
    gpus = visible_gpu_memory() if p.gpu_memory_gib is None else (p.devices, int(p.gpu_memory_gib * GIB))
    result = plan(
        p.model,
        p.method,
        zero_setup(cfg.strategy),
        p.devices,
        p.num_nodes,
        micro_batch_size=p.micro_batch_size,
        seq_len=p.seq_len,
        gradient_checkpointing=p.gradient_checkpointing,
        lora_r=p.lora_r,
        lora_dropout=p.lora_dropout,
        precision=p.precision,
        visible_gpus=gpus,
    )
    print(result.render())


if __name__ == "__main__":
    main()
