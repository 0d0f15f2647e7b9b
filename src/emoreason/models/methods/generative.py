"""Generative methods: a decoder learns to write a comment's label names, with or without reasoning.

Every method is a set of :class:`~emoreason.models.targets.Task` s (the text format, prompt masking and
parsing live in :mod:`emoreason.models.targets`), trained with cross-entropy on the target tokens:
``label_only`` writes the label line alone, ``explain_then_predict`` reasoning then the label line,
``predict_then_explain`` the label line then the reasoning, ``multitask`` (distilling step-by-step, Hsieh et
al. 2023) trains a label task and a rationale task on the same comment with different prefixes and infers
with the label task only.

Inference greedily decodes a left-padded batch until the label line is complete
(:mod:`emoreason.models.decoding`). Two score modes (``inference``):

- ``generate``: 0/1 scores from the parsed labels (the threshold is irrelevant); a label line that is
  missing or holds anything but label names counts as unparseable (names that did match still count).
- ``score``: a probability per label from the model's own likelihoods of label lines
  (:mod:`emoreason.models.likelihood`), so a threshold can be tuned on validation like the classifier's.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial, reduce
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from emoreason.config import ConfigError
from emoreason.data.kote import KoteRow
from emoreason.labels import multi_hot
from emoreason.models.backbones import NetworkSource
from emoreason.models.decoding import CausalLM, decode_lines, greedy_generate
from emoreason.models.likelihood import flip_scores
from emoreason.models.methods.base import Batch, Columns, Method, MethodScores
from emoreason.models.targets import IGNORE, LABEL_TASK, Pieces, Task, encode_task

Inference = Literal["generate", "score"]


@dataclass
class GenerativeMethod(Method):
    """Fine-tune a decoder on its :attr:`tasks`; infer with the first one (see the module docstring)."""

    inference: Inference = "generate"
    max_new_tokens: int = 160
    """Bounds greedy decoding; must cover the label line (KOTE's longest is 21 names, 130 characters)."""
    max_reasoning_tokens: int = 256
    """Reasoning is cut to this many tokens in training targets, so the label line always fits."""
    score_batch_size: int = 256
    """Teacher-forced label lines per forward pass in ``inference=score``."""

    tasks: ClassVar[tuple[Task, ...]]
    padding_side = "left"

    def __post_init__(self) -> None:
        for key in ("max_new_tokens", "max_reasoning_tokens", "score_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"method.{key} must be at least 1, got {getattr(self, key)}")

    eval_loss = False
    """Evaluation batches hold prompts only: there is no reasoning at inference to build a target from."""
    diagnostic_names = ("unparseable_rate", "generated_tokens")

    def task_weights(self) -> tuple[float, ...]:
        return (1.0,)

    def build_model(self, backbone: NetworkSource, tokenizer: PreTrainedTokenizerBase) -> CausalLM:
        if backbone.architecture != "decoder":
            raise ConfigError(
                f"method={self.name} generates text and needs a decoder backbone (model=tiny_neox or "
                f"model=polyglot5.8b), not an {backbone.architecture}"
            )
        return CausalLM(backbone.load_network(tokenizer), Pieces.of(tokenizer))

    @staticmethod
    def _column(task_index: int, key: str) -> str:
        """Task 0's columns are the plain names (the data module sizes batches by ``input_ids``)."""
        return key if task_index == 0 else f"task{task_index}_{key}"

    def pad_values(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
        pad = Pieces.of(tokenizer).pad_id
        values: dict[str, int] = {}
        for i in range(len(self.tasks)):
            values |= {
                self._column(i, "input_ids"): pad,
                self._column(i, "attention_mask"): 0,
                self._column(i, "labels"): IGNORE,
            }
        return values

    def encode(
        self, rows: Sequence[KoteRow], tokenizer: PreTrainedTokenizerBase, max_length: int, *, train: bool
    ) -> Columns:
        """Training: every task's prompt + target; evaluation: the inference task's prompt and gold labels."""
        pieces = Pieces.of(tokenizer)
        if not train:
            prompts = pieces.prompts(self.tasks[0], rows, max_length)
            return {
                "input_ids": prompts,
                "attention_mask": [[1] * len(ids) for ids in prompts],
                "targets": [multi_hot(r.labels) for r in rows],
            }
        columns: Columns = {}
        for i, task in enumerate(self.tasks):
            encoded = encode_task(task, rows, pieces, max_length, self.max_reasoning_tokens)
            columns |= {self._column(i, key): values for key, values in encoded.items()}
        return columns

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted sum of each task's mean token cross-entropy; with several tasks each one's is logged."""
        losses = []
        for i in range(len(self.tasks)):
            logits = model(batch[self._column(i, "input_ids")], batch[self._column(i, "attention_mask")])
            labels = batch[self._column(i, "labels")]
            losses.append(
                F.cross_entropy(
                    logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE
                )
            )
        total = reduce(operator.add, (w * loss for w, loss in zip(self.task_weights(), losses, strict=True)))
        parts = {f"{task.name}_loss": loss.detach() for task, loss in zip(self.tasks, losses, strict=True)}
        return total, parts if len(losses) > 1 else {}

    def detailed_scores(self, model: nn.Module, batch: Batch) -> MethodScores:
        """Label scores (0/1 or flip probabilities), per-row unparseable flags and token counts, the text."""
        assert isinstance(model, CausalLM)
        task = self.tasks[0]
        generations = greedy_generate(model, batch, task, self.max_new_tokens)
        if self.inference == "score":
            scores = flip_scores(model, batch, generations, task, self.score_batch_size)
        else:
            scores = torch.stack([multi_hot(g.label_ids) for g in generations])
        device = batch["input_ids"].device
        diagnostics = {
            "unparseable_rate": torch.tensor([not g.parsed for g in generations], device=device),
            "generated_tokens": torch.tensor([g.generated_tokens for g in generations], device=device),
        }
        decode = partial(decode_lines, model.pieces.tokenizer, [g.ids for g in generations])
        return MethodScores(scores.to(device), diagnostics, decode)

    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.detailed_scores(model, batch).scores


@dataclass
class LabelOnlyMethod(GenerativeMethod):
    """Target = the label line alone: generative fine-tuning without reasoning (the paper's ablation)."""

    name = "label_only"
    tasks = (LABEL_TASK,)


@dataclass
class ExplainThenPredictMethod(GenerativeMethod):
    """Target = reasoning, then the label line (the paper's method); inference writes both."""

    max_new_tokens: int = 416
    name = "explain_then_predict"
    tasks = (Task("explain_then_predict", "", ("reasoning", "labels")),)


@dataclass
class PredictThenExplainMethod(GenerativeMethod):
    """Target = the label line, then reasoning; inference stops after the label line."""

    name = "predict_then_explain"
    tasks = (Task("predict_then_explain", "", ("labels", "reasoning")),)


@dataclass
class MultitaskMethod(GenerativeMethod):
    """Distilling step-by-step: α·L_label + (1−α)·L_rationale on one comment with two task prefixes.

    Inference runs the label task only, so it costs what ``label_only`` costs.
    """

    alpha: float = 0.5
    name = "multitask"
    tasks = (Task("label", "[감정] ", ("labels",)), Task("rationale", "[이유] ", ("reasoning",)))

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"method.alpha must be in [0, 1], got {self.alpha}")

    def task_weights(self) -> tuple[float, ...]:
        return (self.alpha, 1.0 - self.alpha)
