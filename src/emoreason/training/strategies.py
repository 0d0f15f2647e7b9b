"""Turn a ``conf/strategy`` config into what ``lightning.Trainer(strategy=...)`` takes, rules checked first.

Why a builder and not a bare ``instantiate``: Lightning's DeepSpeedStrategy owns batch size, gradient
accumulation, clipping and precision (it fills them from the Trainer and the DataLoader), and DeepSpeed's
Hugging Face style ``"auto"`` values are never resolved by Lightning. A DeepSpeed config that sets any of
them either raises deep inside ``fit`` (``gradient_accumulation_steps``) or silently overrides the Trainer
(``gradient_clipping``, ``bf16``); checking before anything starts names the key instead.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hydra.utils import instantiate
from lightning.pytorch.strategies import Strategy
from omegaconf import DictConfig, OmegaConf

from emoreason.config import ConfigError


@dataclass(frozen=True)
class ZeroSetup:
    """How model states are sharded: stage 0 is DDP or one device, 2 and 3 are DeepSpeed ZeRO."""

    stage: Literal[0, 2, 3] = 0
    offload_optimizer: bool = False
    offload_params: bool = False

    def __post_init__(self) -> None:
        if self.stage not in (0, 2, 3):
            raise ValueError(f"ZeRO stage must be 0, 2 or 3, got {self.stage}")
        if self.offload_optimizer and self.stage == 0:
            raise ValueError("offload_optimizer needs DeepSpeed ZeRO (stage 2 or 3)")
        if self.offload_params and self.stage != 3:
            raise ValueError("offload_params needs ZeRO stage 3")


DEEPSPEED_TARGET = "lightning.pytorch.strategies.DeepSpeedStrategy"

LIGHTNING_OWNED_KEYS: dict[str, str] = {
    "gradient_accumulation_steps": "set Trainer(accumulate_grad_batches=...); Lightning raises if it is here",
    "train_batch_size": "Lightning derives it from the DataLoader and accumulate_grad_batches",
    "train_micro_batch_size_per_gpu": "Lightning takes it from the DataLoader's batch size",
    "gradient_clipping": "set Trainer(gradient_clip_val=...); a value here silently overrides it",
    "bf16": "set Trainer(precision='bf16-mixed'); Lightning writes this block",
    "fp16": "set Trainer(precision=...); Lightning writes this block",
    "amp": "set Trainer(precision=...); DeepSpeed's apex AMP is not used",
    "optimizer": "the LightningModule's configure_optimizers owns the optimizer",
    "scheduler": "the LightningModule's configure_optimizers owns the schedule",
}


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{path}[{i}]")
    else:
        yield path, node


def validate_deepspeed_config(config: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` naming the first offending key; return quietly if usable."""
    for key, why in LIGHTNING_OWNED_KEYS.items():
        if key in config:
            raise ConfigError(f"DeepSpeed config must not set '{key}': {why}")
    for path, value in _leaves(config):
        if isinstance(value, str) and value.strip().lower() == "auto":
            raise ConfigError(
                f"DeepSpeed config key '{path}' is 'auto': only Hugging Face's Trainer resolves 'auto';"
                " give a number or remove the key"
            )
    zero = config.get("zero_optimization")
    if not isinstance(zero, Mapping) or "stage" not in zero:
        raise ConfigError("DeepSpeed config needs 'zero_optimization.stage'")
    stage = zero["stage"]
    if stage not in (2, 3):
        raise ConfigError(f"'zero_optimization.stage' must be 2 or 3 here (use ddp for 0), got {stage!r}")
    if "offload_param" in zero and stage != 3:
        raise ConfigError("'zero_optimization.offload_param' needs 'zero_optimization.stage' 3")


def zero_setup(strategy_cfg: DictConfig) -> ZeroSetup:
    """The memory planner's view of a ``conf/strategy`` entry: ZeRO stage and what goes to the host."""
    if strategy_cfg.get("_target_") != DEEPSPEED_TARGET:
        return ZeroSetup()
    return zero_of_deepspeed_config(_deepspeed_config(strategy_cfg))


def _deepspeed_config(strategy_cfg: DictConfig) -> dict[str, Any]:
    """The ``config:`` block of a DeepSpeed ``conf/strategy`` entry, resolved, as DeepSpeed reads it."""
    config = OmegaConf.to_container(strategy_cfg.config, resolve=True)
    assert isinstance(config, dict)
    return {str(key): value for key, value in config.items()}


def zero_of_deepspeed_config(config: Mapping[str, Any]) -> ZeroSetup:
    """The planner's view of a DeepSpeed config dict (as ``DeepSpeedStrategy.config`` holds it)."""
    zero = config["zero_optimization"]
    return ZeroSetup(
        stage=zero["stage"],
        offload_optimizer=zero.get("offload_optimizer", {}).get("device", "none") != "none",
        offload_params=zero.get("offload_param", {}).get("device", "none") != "none",
    )


def build_strategy(strategy_cfg: DictConfig) -> Strategy | str:
    """Validate (DeepSpeed) and instantiate; ``conf/strategy/auto.yaml`` yields Lightning's ``"auto"``."""
    if strategy_cfg.get("_target_") == DEEPSPEED_TARGET:
        validate_deepspeed_config(_deepspeed_config(strategy_cfg))
    built = instantiate(strategy_cfg, _convert_="all")
    if not isinstance(built, Strategy | str):
        raise TypeError(f"strategy config built a {type(built).__name__}, not a Lightning Strategy or name")
    return built
