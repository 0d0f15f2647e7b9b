"""Per-GPU memory plan for model × scope (full or LoRA) × strategy × devices, printed before training starts.

Why: a 5.8B-parameter run that does not fit dies minutes in, after data loading and (under ZeRO-3) after
partitioning; the arithmetic below says so in a second and names the cheapest way out (LoRA, more devices,
offload, gradient checkpointing).

Notation: ``N`` all parameters, ``T`` trainable ones (``N`` for a full fine-tune, the adapters for LoRA),
``G = devices × num_nodes`` ranks, ``L_max`` the largest single module's own parameters (the embedding for
Polyglot), ``b`` micro-batch, ``s`` sequence length, ``h`` hidden size, ``a`` heads, ``ℓ`` layers.

Model states, bytes per GPU (bf16-mixed; Adam keeps two fp32 moments):

==========================  ====================  ===========  ===========
strategy                    parameters            gradients    optimizer
==========================  ====================  ===========  ===========
DDP / one device (stage 0)  ``4N``                ``4T``       ``8T``
ZeRO-2                      ``2N``                ``6T/G``     ``12T/G``
ZeRO-3                      ``2N/G + 4·L_max``    ``4T/G``     ``12T/G``
==========================  ====================  ===========  ===========

- Stage 0 is Lightning's ``bf16-mixed`` under DDP: torch autocast, weights stay fp32 and are their own master.
- DeepSpeed casts the module to bf16 (``2`` per parameter) and keeps an fp32 master copy plus the two Adam
  moments (``4 + 8 = 12`` per trainable parameter) in its optimizer. Gradient bytes follow DeepSpeed's own
  estimators: ZeRO-2 counts a bf16 and an fp32 gradient (``2 + 4``), ZeRO-3 the fp32 one, and ZeRO-3 adds
  ``4·L_max`` for the layer it gathers. For a full fine-tune these rows sum to exactly
  ``estimate_zero2_model_states_mem_needs`` (``2N + 18N/G``) and ``estimate_zero3_model_states_mem_needs``
  (``4L_max + 18N/G``), which are also reported when they apply (full fine-tune under ZeRO).
- ``offload_optimizer`` moves the fp32 gradients and the optimizer to host memory (``16T/G``; the bf16
  gradients only stream through reduce buckets, as in DeepSpeed's estimator), ``offload_params`` (ZeRO-3)
  the bf16 parameter shards too; the GPU keeps what is left. Host bytes per node are the offloaded per-rank
  bytes times the ranks of a node (``devices``).

Activations, bytes per GPU (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", eq. 1 with no tensor parallelism; 16-bit activations, doubled for ``32-true``):

- one layer: ``A_layer = s·b·h·(34 + 5·a·s/h)`` (the ``5·a·s²·b`` part is eager attention's score tensors;
  SDPA/flash attention skips it, so this is an upper bound)
- no checkpointing: ``ℓ·A_layer``; per-layer gradient checkpointing: ``ℓ·2·s·b·h`` (each layer's input) plus
  one ``A_layer`` being recomputed
- LoRA with dropout > 0: each adapted linear also keeps a dropped copy of its input, ``2·s·b·Σ in_features``
- a causal LM's logits: ``s·b·V·(2 + 4)`` (bf16 logits and the fp32 copy the loss makes)

Not counted: the CUDA context (~0.5 GiB), allocator fragmentation, communication buckets, ZeRO-3's
prefetch/live-parameter buffers, the embedding/final-norm outputs (``2·s·b·h`` each) and the training
process's own host memory (~13 GiB seen on an H200 node); hence the "tight" warning at 90% of a GPU.
"""

import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from peft.tuners.lora import LoraLayer
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    ElectraForSequenceClassification,
    GPTNeoXForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)

from emoreason.labels import NUM_LABELS
from emoreason.models.architectures import kcelectra_base_config, polyglot_ko_5_8b_config
from emoreason.training.strategies import ZeroSetup

GIB = 1024**3
TIGHT_FRACTION = 0.9
"""Warn above this share of a GPU: the uncounted context and fragmentation usually take the rest."""

_ADAPTER_PART = re.compile(r"\.lora_[A-Za-z_]+(\.|$)")
"""Names inside a PEFT LoRA layer that are the adapters themselves (``lora_A.default``, ``lora_B``, ...)."""

Scope = Literal["full", "lora"]
"""What trains: every parameter, or LoRA adapters (and new heads). Not the training method (conf/method)."""
Precision = Literal["bf16-mixed", "32-true"]


@dataclass(frozen=True)
class ModelShape:
    """What the planner needs of a model: counts from the real module, plus the transformer's dimensions."""

    name: str
    total_params: int
    largest_layer_params: int
    linears: tuple[tuple[str, int, int], ...]
    """(qualified name, in_features, out_features) of every ``nn.Linear``: LoRA's candidates."""
    hidden_size: int
    num_layers: int
    num_heads: int
    logits_per_token: int
    """Vocabulary size for a causal LM (logits at every position); 0 for a pooled classifier."""

    @classmethod
    def from_module(cls, name: str, module: nn.Module, *, logits_per_token: int) -> "ModelShape":
        """Count ``module`` (meta tensors are fine); shared weights count once, as DeepSpeed counts.

        ``module`` may hold one Hugging Face model inside heads or wrappers (its config gives the dimensions)
        and PEFT LoRA adapters: a wrapped linear is listed once under its own name, the adapters not at all.
        """
        config = _pretrained_model(module).config
        return cls(
            name=name,
            total_params=sum(p.numel() for p in module.parameters()),
            largest_layer_params=max(
                sum(p.numel() for p in m.parameters(recurse=False)) for m in module.modules()
            ),
            linears=tuple(
                (qualified.removesuffix(".base_layer"), m.in_features, m.out_features)
                for qualified, m in module.named_modules()
                if isinstance(m, nn.Linear) and not _ADAPTER_PART.search(qualified)
            ),
            hidden_size=config.hidden_size,
            num_layers=config.num_hidden_layers,
            num_heads=config.num_attention_heads,
            logits_per_token=logits_per_token,
        )

    def lora_linears(self, targets: tuple[str, ...]) -> list[tuple[int, int]]:
        """(in, out) of the linears PEFT would adapt: those whose last name component is a target."""
        return [(i, o) for qualified, i, o in self.linears if qualified.rsplit(".", 1)[-1] in targets]


_REGISTRY: dict[str, tuple[Callable[[], PreTrainedModel], bool]] = {
    "polyglot5.8b": (lambda: GPTNeoXForCausalLM(polyglot_ko_5_8b_config()), True),
    "kcelectra": (
        lambda: ElectraForSequenceClassification(kcelectra_base_config(num_labels=NUM_LABELS)),
        False,
    ),
}
KNOWN_MODELS: tuple[str, ...] = tuple(_REGISTRY)


def _pretrained_model(module: nn.Module) -> PreTrainedModel:
    """The (outermost) Hugging Face model in ``module``: whose config holds the transformer's dimensions."""
    found = next((m for m in module.modules() if isinstance(m, PreTrainedModel)), None)
    if found is None:
        raise ValueError(f"{type(module).__name__} holds no transformers PreTrainedModel to plan memory for")
    return found


@functools.cache
def model_shape(name: str) -> ModelShape:
    """Shape of a registered backbone, built on the ``meta`` device: exact counts, no weights, no download."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}")
    build, causal_lm = _REGISTRY[name]
    with torch.device("meta"):
        module = build()
    return ModelShape.from_module(name, module, logits_per_token=module.config.vocab_size if causal_lm else 0)


@dataclass(frozen=True)
class Breakdown:
    """Bytes of one device (a GPU, or the host of one node) by kind."""

    parameters: int = 0
    gradients: int = 0
    optimizer: int = 0
    activations: int = 0

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.activations


@dataclass(frozen=True)
class DeepSpeedEstimate:
    """DeepSpeed's own model-state estimate (full fine-tune only: it assumes every parameter trains)."""

    gpu_per_device: int
    cpu_per_node: int
    """Includes DeepSpeed's ``additional_buffer_factor`` of 1.5."""


@dataclass(frozen=True)
class MemoryPlan:
    """The planner's answer; ``render()`` is what training prints at start."""

    model: str
    scope: Scope
    zero: ZeroSetup
    devices: int
    num_nodes: int
    micro_batch_size: int
    seq_len: int
    gradient_checkpointing: bool
    total_params: int
    trainable_params: int
    gpu: Breakdown
    cpu_per_node: Breakdown
    deepspeed_estimate: DeepSpeedEstimate | None
    gpu_capacity: int | None
    warnings: tuple[str, ...] = ()

    @property
    def fits(self) -> bool | None:
        """None when no GPU is visible to compare against."""
        return None if self.gpu_capacity is None else self.gpu.total <= self.gpu_capacity

    def render(self) -> str:
        zero = "DDP/single" if self.zero.stage == 0 else f"ZeRO-{self.zero.stage}"
        offload = [
            k
            for k, on in (("optimizer", self.zero.offload_optimizer), ("params", self.zero.offload_params))
            if on
        ]
        lines = [
            f"Memory plan: {self.model}, {self.scope}, {zero}"
            + (f" + offload({', '.join(offload)})" if offload else "")
            + f", {self.devices} GPU(s) x {self.num_nodes} node(s), micro-batch {self.micro_batch_size}"
            + f" x {self.seq_len} tokens, gradient checkpointing"
            + (" on" if self.gradient_checkpointing else " off"),
            f"  parameters: {self.total_params:,} total, {self.trainable_params:,} trainable",
            f"  {'GiB':<14}{'per GPU':>10}{'host/node':>11}",
        ]
        for kind in ("parameters", "gradients", "optimizer", "activations", "total"):
            gpu, cpu = getattr(self.gpu, kind), getattr(self.cpu_per_node, kind)
            lines.append(f"  {kind:<14}{gpu / GIB:>10.2f}{cpu / GIB:>11.2f}")
        if self.deepspeed_estimate is not None:
            est = self.deepspeed_estimate
            lines.append(
                f"  DeepSpeed estimator (model states): {est.gpu_per_device / GIB:.2f} GiB/GPU,"
                f" {est.cpu_per_node / GIB:.2f} GiB host/node"
            )
        if self.gpu_capacity is not None:
            lines.append(
                f"  visible GPU: {self.gpu_capacity / GIB:.2f} GiB; fits: {'yes' if self.fits else 'NO'}"
            )
        lines.extend(f"  WARNING: {w}" for w in self.warnings)
        return "\n".join(lines)


def trainable_params(shape: ModelShape, scope: Scope, lora_r: int, lora_targets: tuple[str, ...]) -> int:
    """``N`` for a full fine-tune; ``Σ r·(in + out)`` over the adapted linears for LoRA (A and B, no bias).

    LoRA's rank and targets have no defaults here: they are a run's ``conf/lora`` entry (``plan_memory.py``
    reads it as ``train.py`` does), so a plan cannot assume other adapters than the run trains.
    """
    if scope == "full":
        return shape.total_params
    if lora_r < 1 or not lora_targets:
        raise ValueError(f"a LoRA plan needs lora_r >= 1 and lora_targets, got {lora_r} and {lora_targets}")
    adapted = shape.lora_linears(lora_targets)
    if not adapted:
        raise ValueError(f"no linear of {shape.name} matches LoRA targets {lora_targets}")
    return sum(lora_r * (i + o) for i, o in adapted)


def activation_bytes(
    shape: ModelShape,
    *,
    micro_batch_size: int,
    seq_len: int,
    gradient_checkpointing: bool,
    lora_dropout_inputs: int,
    precision: Precision,
) -> int:
    """Korthikanti et al.'s per-layer count (module docstring), checkpointed or not, plus LoRA and logits.

    ``lora_dropout_inputs`` is ``Σ in_features`` of the adapted linears when LoRA dropout is on, else 0.
    """
    s, b, h, a, layers = seq_len, micro_batch_size, shape.hidden_size, shape.num_heads, shape.num_layers
    per_layer = s * b * h * 34 + 5 * a * s * s * b
    layers_bytes = layers * 2 * s * b * h + per_layer if gradient_checkpointing else layers * per_layer
    lora_bytes = 2 * s * b * lora_dropout_inputs
    logits_bytes = s * b * shape.logits_per_token * (2 + 4)
    scale = 2 if precision == "32-true" else 1
    return scale * (layers_bytes + lora_bytes) + logits_bytes


def model_state_bytes(
    total: int, trainable: int, largest_layer: int, zero: ZeroSetup, ranks: int
) -> tuple[Breakdown, Breakdown]:
    """(GPU, host) bytes of parameters, gradients and optimizer per rank, by the module docstring's table."""
    if zero.stage == 0:
        return Breakdown(parameters=4 * total, gradients=4 * trainable, optimizer=8 * trainable), Breakdown()
    fp32_grads, optimizer = 4 * trainable // ranks, 12 * trainable // ranks
    # ZeRO-2 also counts the bf16 gradients being reduced; offloaded, DeepSpeed counts none on the GPU.
    bf16_grads = 2 * trainable // ranks if zero.stage == 2 else 0
    params = 2 * total if zero.stage == 2 else 2 * total // ranks
    gpu_params, cpu_params = (0, params) if zero.offload_params else (params, 0)
    if zero.stage == 3:
        gpu_params += 4 * largest_layer
    if zero.offload_optimizer:
        return Breakdown(parameters=gpu_params), Breakdown(cpu_params, fp32_grads, optimizer)
    return Breakdown(gpu_params, bf16_grads + fp32_grads, optimizer), Breakdown(parameters=cpu_params)


def deepspeed_estimate(shape: ModelShape, zero: ZeroSetup, devices: int, num_nodes: int) -> DeepSpeedEstimate:
    """DeepSpeed's ``estimate_zero{2,3}_model_states_mem_needs`` (``*_all_live`` only prints these)."""
    if zero.stage == 2:
        from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

        cpu, gpu = estimate_zero2_model_states_mem_needs(
            shape.total_params, devices, num_nodes, cpu_offload=zero.offload_optimizer
        )
    else:
        from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
            shape.total_params,
            shape.largest_layer_params,
            devices,
            num_nodes,
            cpu_offload=zero.offload_optimizer,
            cpu_offload_params=zero.offload_params,
        )
    return DeepSpeedEstimate(gpu_per_device=gpu, cpu_per_node=cpu)


def visible_gpu_memory() -> tuple[int, int | None]:
    """(number of visible GPUs, bytes of the smallest), or (0, None) without CUDA."""
    count = torch.cuda.device_count()
    if count == 0:
        return 0, None
    return count, min(torch.cuda.get_device_properties(i).total_memory for i in range(count))


def host_memory() -> int:
    """Physical RAM of this node: the bound for offloaded states."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def plan(
    model: str | ModelShape,
    scope: Scope,
    zero: ZeroSetup = ZeroSetup(),
    devices: int = 1,
    num_nodes: int = 1,
    *,
    micro_batch_size: int = 16,
    seq_len: int = 128,
    gradient_checkpointing: bool = False,
    lora_r: int = 0,
    lora_dropout: float = 0.0,
    lora_targets: tuple[str, ...] = (),
    precision: Precision = "bf16-mixed",
    visible_gpus: tuple[int, int | None] | None = None,
    host_bytes: int | None = None,
    trainable: int | None = None,
) -> MemoryPlan:
    """Plan memory per GPU and per node's host; warnings say what will not fit and why.

    ``visible_gpus`` (count, bytes per GPU) and ``host_bytes`` default to this machine's; pass them to plan
    for another one. ``devices`` is GPUs per node (Lightning's ``Trainer(devices=...)``). ``trainable``
    replaces the scope's count (all parameters, or the LoRA formula) when the network is already built and
    counted, new heads included. ``lora_r``, ``lora_dropout`` and ``lora_targets`` are the run's ``conf/lora``
    entry (``r``, ``dropout``, ``target_modules``); a LoRA plan without rank and targets is a ``ValueError``.
    """
    if scope not in ("full", "lora"):
        raise ValueError(f"scope must be 'full' or 'lora', got {scope!r}")
    if precision not in ("bf16-mixed", "32-true"):
        raise ValueError(f"precision must be 'bf16-mixed' or '32-true', got {precision!r}")
    if zero.stage and precision != "bf16-mixed":
        raise ValueError("DeepSpeed runs are planned for bf16-mixed only")
    if devices < 1 or num_nodes < 1:
        raise ValueError(f"devices and num_nodes must be >= 1, got {devices} and {num_nodes}")
    shape = model if isinstance(model, ModelShape) else model_shape(model)
    ranks = devices * num_nodes
    if trainable is None:
        trainable = trainable_params(shape, scope, lora_r, lora_targets)
    gpu_states, cpu_states = model_state_bytes(
        shape.total_params, trainable, shape.largest_layer_params, zero, ranks
    )
    dropout_inputs = (
        sum(i for i, _ in shape.lora_linears(lora_targets)) if scope == "lora" and lora_dropout > 0 else 0
    )
    activations = activation_bytes(
        shape,
        micro_batch_size=micro_batch_size,
        seq_len=seq_len,
        gradient_checkpointing=gradient_checkpointing,
        lora_dropout_inputs=dropout_inputs,
        precision=precision,
    )
    gpu = Breakdown(gpu_states.parameters, gpu_states.gradients, gpu_states.optimizer, activations)
    cpu = Breakdown(
        cpu_states.parameters * devices, cpu_states.gradients * devices, cpu_states.optimizer * devices
    )
    estimate = deepspeed_estimate(shape, zero, devices, num_nodes) if zero.stage and scope == "full" else None
    count, capacity = visible_gpus if visible_gpus is not None else visible_gpu_memory()
    host = host_bytes if host_bytes is not None else host_memory()
    warnings = _warnings(gpu, cpu, count, capacity, devices, host, gradient_checkpointing)
    return MemoryPlan(
        model=shape.name,
        scope=scope,
        zero=zero,
        devices=devices,
        num_nodes=num_nodes,
        micro_batch_size=micro_batch_size,
        seq_len=seq_len,
        gradient_checkpointing=gradient_checkpointing,
        total_params=shape.total_params,
        trainable_params=trainable,
        gpu=gpu,
        cpu_per_node=cpu,
        deepspeed_estimate=estimate,
        gpu_capacity=capacity,
        warnings=warnings,
    )


def plan_network(
    network: nn.Module,
    zero: ZeroSetup = ZeroSetup(),
    devices: int = 1,
    num_nodes: int = 1,
    *,
    micro_batch_size: int,
    seq_len: int,
    precision: Precision = "bf16-mixed",
    visible_gpus: tuple[int, int | None] | None = None,
    host_bytes: int | None = None,
) -> MemoryPlan:
    """The plan for a network as built for training, read off the network itself.

    Its own parameter counts, which of them train (new heads included), its LoRA adapters (rank, dropout,
    adapted layers), whether it checkpoints activations and whether it computes vocabulary logits: what
    training prints at start. ``plan`` with a registered name is the same arithmetic for a model not built.
    """
    pretrained = _pretrained_model(network)
    output = pretrained.get_output_embeddings()
    shape = ModelShape.from_module(
        pretrained.config.name_or_path or pretrained.config.model_type,
        network,
        logits_per_token=output.out_features if isinstance(output, nn.Linear) else 0,
    )
    adapters = [(name, m) for name, m in network.named_modules() if isinstance(m, LoraLayer)]
    ranks = [r for _, m in adapters for r in m.r.values()]
    dropouts = [d.p for _, m in adapters for d in m.lora_dropout.values() if isinstance(d, nn.Dropout)]
    return plan(
        shape,
        "lora" if adapters else "full",
        zero,
        devices,
        num_nodes,
        micro_batch_size=micro_batch_size,
        seq_len=seq_len,
        gradient_checkpointing=any(
            getattr(m, "gradient_checkpointing", False) is True for m in network.modules()
        ),
        lora_r=max(ranks, default=0),
        lora_dropout=max(dropouts, default=0.0),
        lora_targets=tuple(sorted({name.rsplit(".", 1)[-1] for name, _ in adapters})),
        precision=precision,
        visible_gpus=visible_gpus,
        host_bytes=host_bytes,
        trainable=sum(p.numel() for p in network.parameters() if p.requires_grad),
    )


def _warnings(
    gpu: Breakdown,
    cpu: Breakdown,
    count: int,
    capacity: int | None,
    devices: int,
    host: int,
    gradient_checkpointing: bool,
) -> tuple[str, ...]:
    out: list[str] = []
    if capacity is None:
        out.append("no GPU visible: fit not checked")
    else:
        if count < devices:
            out.append(f"{devices} GPUs per node requested but {count} visible")
        need, have = gpu.total / GIB, capacity / GIB
        if gpu.total > capacity:
            hint = "" if gradient_checkpointing else "; try gradient checkpointing,"
            out.append(
                f"WILL NOT FIT: {need:.1f} GiB per GPU > {have:.1f} GiB visible{hint} a smaller micro-batch,"
                " LoRA, more GPUs, a higher ZeRO stage or offload"
            )
        elif gpu.total > TIGHT_FRACTION * capacity:
            out.append(f"tight: {need:.1f} of {have:.1f} GiB per GPU before CUDA context and fragmentation")
    if cpu.total > host:
        out.append(
            f"offloaded states need {cpu.total / GIB:.1f} GiB host RAM per node, {host / GIB:.1f} GiB here"
        )
    return tuple(out)


PRETRAINED_CONFIGS: dict[str, Callable[[], PretrainedConfig]] = {
    "EleutherAI/polyglot-ko-5.8b": polyglot_ko_5_8b_config,
    "beomi/KcELECTRA-base-v2022": kcelectra_base_config,
}
"""Configs of the pretrained backbones in ``conf/model``, known without a download."""


def backbone_shape(model: Mapping[str, Any], *, generative: bool) -> ModelShape:
    """Shape of a ``conf/model`` entry as a run builds it, on the ``meta`` device (no weights, no download).

    A generative method trains a causal LM (vocabulary logits at every position); the classifier pools the
    bare model into a 44-way head (``hidden × 44`` more parameters, not counted). An embedded backbone's
    vocabulary is its configured ``vocab_size`` (its trained tokenizer has at most that many entries).
    Raises ``ValueError`` for a pretrained model whose config is not known offline.
    """
    if "model_type" in model:
        config = AutoConfig.for_model(model["model_type"], vocab_size=model["vocab_size"], **model["config"])
        name = f"tiny-{model['model_type']}"
    else:
        name = model["name_or_path"]
        if name not in PRETRAINED_CONFIGS:
            raise ValueError(
                f"model.name_or_path={name}: no config known offline to plan memory for; known: "
                f"{', '.join(PRETRAINED_CONFIGS)}"
            )
        config = PRETRAINED_CONFIGS[name]()
    with torch.device("meta"):
        module = (AutoModelForCausalLM if generative else AutoModel).from_config(config)
    return ModelShape.from_module(name, module, logits_per_token=config.vocab_size if generative else 0)
