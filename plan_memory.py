"""Print the memory plan (emoreason.training.memory) of what ``train.py`` would run with the same overrides.

Why a separate command: deciding between LoRA, ZeRO stages, offload and node counts should take a second,
not a failed multi-GPU job. It composes train.py's own config (conf/plan_memory.yaml includes
conf/train.yaml), so ``python plan_memory.py model=polyglot5.8b`` plans LoRA r=16 under ``strategy=auto``
exactly as ``python train.py model=polyglot5.8b`` trains it, and an override train.py would reject is
rejected here too. Nothing is built but the network's shape, on the meta device: no data, no download.
"""

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from emoreason.cli import hydra_main
from emoreason.config import ConfigError, register_resolvers
from emoreason.models.lora import LoraSettings
from emoreason.models.methods.generative import GenerativeMethod
from emoreason.training.callbacks import PLANNED_PRECISION
from emoreason.training.memory import GIB, MemoryPlan, backbone_shape, plan, visible_gpu_memory
from emoreason.training.strategies import zero_setup

register_resolvers()


def plan_of(cfg: DictConfig) -> MemoryPlan:
    """The plan for a composed train config: model, method, LoRA, strategy, trainer and batch of the run."""
    precision = PLANNED_PRECISION.get(str(cfg.trainer.precision))
    zero = zero_setup(cfg.strategy)
    if precision is None or (zero.stage and precision != "bf16-mixed"):
        raise ConfigError(
            f"trainer.precision={cfg.trainer.precision} is not planned with this strategy: plan a GPU run "
            "with trainer=gpu (bf16-mixed)"
        )
    container = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(container, dict)
    model = {str(key): value for key, value in container.items()}
    try:
        # A generative method trains a causal LM (vocabulary logits); ``ClassifierMethod`` does not.
        generative = issubclass(get_class(cfg.method._target_), GenerativeMethod)
        shape = backbone_shape(model, generative=generative)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    lora: LoraSettings | None = instantiate(cfg.lora) if cfg.lora is not None else None  # as train.py does
    devices = cfg.trainer.devices
    if not isinstance(devices, int):
        raise ConfigError(f"trainer.devices={devices}: give a number of GPUs per node to plan for")
    gpus = visible_gpu_memory() if cfg.gpu_memory_gib is None else (devices, int(cfg.gpu_memory_gib * GIB))
    return plan(
        shape,
        "lora" if lora is not None else "full",
        zero,
        devices,
        cfg.trainer.get("num_nodes", 1),
        micro_batch_size=cfg.data.loader.batch_size,
        seq_len=cfg.data.loader.max_length,
        gradient_checkpointing=bool(model.get("gradient_checkpointing", False)),
        lora_r=lora.r if lora is not None else 0,
        lora_dropout=lora.dropout if lora is not None else 0.0,
        lora_targets=tuple(lora.target_modules) if lora is not None else (),
        precision=precision,
        visible_gpus=gpus,
    )


@hydra_main(config_name="plan_memory")
def main(cfg: DictConfig) -> None:
    print(plan_of(cfg).render())


if __name__ == "__main__":
    main()
