"""The method contract: everything the rest of the package asks of a training recipe, in one class.

A method turns labelled comments into model inputs and targets and a network's outputs into label scores;
it is independent of the backbone (which network: ``conf/model``) and of the strategy (how it is spread over
GPUs). Every caller goes through :class:`Method` and nothing else:

- ``emoreason.components.build_parts`` calls :meth:`Method.build_model`, then
  :meth:`~Method.data_dependent_init` with the training rows;
- the data module (:class:`emoreason.training.datamodule.KoteDataModule`) calls :meth:`~Method.encode`
  (through the encoding cache, keyed by :attr:`~Method.name` and the method's ``repr``),
  :meth:`~Method.pad_values` and :attr:`~Method.padding_side`;
- the LightningModule (:class:`emoreason.training.module.EmotionModule`) calls :meth:`~Method.loss` in
  training and, in validation, :meth:`~Method.loss_and_scores` when :attr:`~Method.eval_loss`, else
  :meth:`~Method.detailed_scores`; monitor checks read :attr:`~Method.diagnostic_names`;
- final scoring (:func:`emoreason.evaluation.scoring.predict_scores`) calls :meth:`~Method.detailed_scores`.

The required members are abstract; the optional ones have defaults here, so a subclass overrides only what
it changes (the shape of torchtune's ``FTRecipeInterface``, which names a recipe's whole surface in one
class). Adding a method is one subclass in a new file of this folder and one ``conf/method/<name>.yaml``
naming it as ``_target_`` (docs/reasoning.md, "Adding a method").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from emoreason.data.kote import KoteRow
from emoreason.models.backbones import NetworkSource

Batch = dict[str, torch.Tensor]
"""A padded batch: the columns :meth:`Method.encode` wrote, as (batch, width) tensors, plus ``index``."""
Columns = dict[str, list[Any]]
"""One split's encoding: column name → one value per row (token id lists, or a (44,) target tensor)."""


@dataclass
class MethodScores:
    """What a method says about one batch: label scores, per-row diagnostics, and any text it wrote."""

    scores: torch.Tensor
    """(batch, 44) label scores in [0, 1]."""
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)
    """Per-row figures (one value per row), e.g. ``unparseable_rate``; {} for methods without any."""
    decode: Callable[[], list[str]] | None = None
    """Decodes the text a generative method wrote for each row (reasoning and label line); None otherwise.

    Run only when :attr:`generated` is read (evaluation writes it out), so validation never decodes.
    """

    @cached_property
    def generated(self) -> list[str] | None:
        """The text written for each row, decoded on first read; None for methods that write none."""
        return None if self.decode is None else self.decode()


class Method(ABC):
    """A training recipe: encoding, network, loss and label scores (the module docstring lists the callers).

    Subclasses are dataclasses whose fields are the ``conf/method`` keys; their ``repr`` keys the encoding
    cache, so every field that changes the encoding must be a field.
    """

    name: ClassVar[str]
    """``method.name`` in metrics.json and the encoding cache's file names; the ``conf/method`` file name."""
    padding_side: ClassVar[Literal["left", "right"]] = "right"
    """Where batches are padded: ``left`` for methods that generate after the prompt."""
    eval_loss: ClassVar[bool] = True
    """False when evaluation batches cannot give a loss (a generative method's hold prompts only: the
    reasoning a target needs is not there at inference); ``val/loss`` is then not logged."""
    diagnostic_names: ClassVar[tuple[str, ...]] = ()
    """The per-row figures :meth:`detailed_scores` reports, logged as ``val/<name>``, so a callback
    monitoring one can be checked before training."""

    @abstractmethod
    def build_model(self, backbone: NetworkSource, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        """The network this method trains, built on ``backbone``'s (possibly LoRA-wrapped) network.

        Raises ``ValueError`` for a backbone the method cannot use (e.g. an encoder for generation).
        """

    @abstractmethod
    def pad_values(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
        """Pad value of every ragged column :meth:`encode` writes (columns not named are stacked)."""

    @abstractmethod
    def encode(
        self, rows: Sequence[KoteRow], tokenizer: PreTrainedTokenizerBase, max_length: int, *, train: bool
    ) -> Columns:
        """One split's columns, computed once and cached; ``input_ids`` sizes batches, and evaluation
        columns (``train=False``) must hold ``targets``, the rows' (44,) multi-hot gold labels."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The scalar training loss and named parts logged as ``train/<name>`` ({} when there are none)."""

    @abstractmethod
    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """(batch, 44) label scores in [0, 1] for an evaluation batch."""

    def detailed_scores(self, model: nn.Module, batch: Batch) -> MethodScores:
        """Scores plus per-row :attr:`diagnostic_names` figures and any generated text; default: scores."""
        return MethodScores(self.scores(model, batch))

    def loss_and_scores(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, MethodScores]:
        """Validation's loss and scores; override to take both from one forward (default: two)."""
        return self.loss(model, batch)[0], self.detailed_scores(model, batch)

    def data_dependent_init(self, model: nn.Module, train_rows: Sequence[KoteRow]) -> None:
        """Set weights of a freshly built ``model`` from the training rows, before its first step.

        Called by ``build_parts`` whenever the run has training rows (at least one). Set trainable weights
        only: checkpoints store those, so a resumed or reloaded run gets its trained values back, while a
        frozen weight set here would differ between a run and its reloaded checkpoint. Default: nothing.
        """
        del model, train_rows  # the initialization the network was built with stands
