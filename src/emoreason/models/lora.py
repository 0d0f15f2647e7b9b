"""LoRA adapters (PEFT) injected into a backbone's network, so only the adapters (and new heads) train.

Applied where the network is loaded, before a method wraps it: the method never knows (a classifier's new
head stays trainable because it is created after the freeze), and the model class is unchanged, so
``generate`` works as usual. Checkpoints then hold only what trains (see ``EmotionModule.state_dict``);
the frozen weights are reloaded from the backbone, which is why an embedded backbone needs ``init_seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peft import LoraConfig, inject_adapter_in_model
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emoreason.config import ConfigError
from emoreason.models.backbones import Architecture, Backbone, EmbeddedBackbone, NetworkSource


def _matches(module_name: str, target: str) -> bool:
    """PEFT's rule for a ``target_modules`` entry: the whole name or its last dotted parts."""
    return module_name == target or module_name.endswith(f".{target}")


@dataclass
class LoraSettings:
    """A ``conf/lora`` entry: adapter rank, scaling (``alpha / r``), dropout and target layers.

    No defaults: ``conf/lora/default.yaml`` is the one place the paper's settings (and GPT-NeoX's target
    list) are written, and ``plan_memory.py`` plans with the same entry ``train.py`` trains with.
    """

    r: int
    alpha: int
    dropout: float
    target_modules: list[str]

    def peft_config(self, base_model: str | None = None, revision: str | None = None) -> LoraConfig:
        """PEFT's config for these settings; ``base_model``/``revision`` name the Hub model it adapts."""
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            bias="none",
            base_model_name_or_path=base_model,
            revision=revision,
        )

    def inject(self, network: PreTrainedModel) -> PreTrainedModel:
        """Add adapters to ``network`` in place and freeze every other weight of it."""
        output = network.get_output_embeddings()
        output_names = [name for name, module in network.named_modules() if module is output]
        adapted_output = [t for t in self.target_modules for name in output_names if _matches(name, t)]
        if adapted_output:
            raise ConfigError(
                f"lora.target_modules {adapted_output} would adapt the output embedding {output_names}: "
                "it stays frozen (a vocabulary-sized adapter buys nothing for label names); remove it"
            )
        try:
            inject_adapter_in_model(self.peft_config(), network)  # in place: PEFT returns ``network`` itself
        except ValueError as exc:
            raise ConfigError(
                f"lora.target_modules={list(self.target_modules)} do not fit {type(network).__name__} "
                f"({exc}). conf/lora/default.yaml lists GPT-NeoX's; ELECTRA takes e.g. "
                "[query,key,value,dense]."
            ) from exc
        return network


@dataclass
class LoraBackbone:
    """A backbone whose network comes back with adapters injected: what methods build on with LoRA on."""

    backbone: Backbone
    settings: LoraSettings
    architecture: Architecture = field(init=False)

    def __post_init__(self) -> None:
        self.architecture = self.backbone.architecture

    def load_network(self, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
        return self.settings.inject(self.backbone.load_network(tokenizer))


def with_lora(backbone: Backbone, settings: LoraSettings | None) -> NetworkSource:
    """``backbone`` itself without LoRA (``lora=none``), else the same backbone with adapters."""
    if settings is None:
        return backbone
    if isinstance(backbone, EmbeddedBackbone) and backbone.init_seed is None:
        raise ConfigError(
            "LoRA checkpoints hold the adapters only, so the frozen random weights of an embedded model must "
            "be rebuilt identically on reload: set model.init_seed (tiny_neox sets it to ${seed})"
        )
    return LoraBackbone(backbone, settings)
