"""Greedy decoding of a causal LM until a generative method's label line is complete.

Kept apart from the text format (:mod:`emoreason.models.targets`) and from likelihood scoring
(:mod:`emoreason.models.likelihood`): decoding is the one step that runs Hugging Face ``generate``, so its
stop rule, its token accounting and the ZeRO-3 synchronisation live here once. A left-padded batch is
decoded with ``do_sample=False, num_beams=1`` until each row has written its label line (its closing
newline, or EOS); the rest of the row is cut and the label line parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from transformers import (
    GenerationMixin,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)

from emoreason.models.continuations import partitioned_across_ranks
from emoreason.models.heads import position_ids
from emoreason.models.targets import Pieces, Task, read_labels

Batch = dict[str, torch.Tensor]


class CausalLM(nn.Module):
    """A causal LM with what decoding needs from its tokenizer (kept out of the state dict)."""

    network: PreTrainedModel
    newline_tokens: torch.Tensor

    def __init__(self, network: PreTrainedModel, pieces: Pieces) -> None:
        super().__init__()
        self.network = network
        self.pieces = pieces
        vocab = pieces.tokenizer.batch_decode([[i] for i in range(len(pieces.tokenizer))])
        newline_tokens = [i for i, text in enumerate(vocab) if "\n" in text]
        self.register_buffer(
            "newline_tokens", torch.tensor(newline_tokens, dtype=torch.long), persistent=False
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits, (batch, width, vocab); positions skip left padding, so a padded row scores as
        it would alone."""
        return self.network(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids(attention_mask),
            use_cache=False,
        ).logits


class LinesDone(StoppingCriteria):
    """Stops a row once its generated part holds ``lines`` newline-bearing tokens (the label line is done)."""

    def __init__(self, newline_tokens: torch.Tensor, lines: int, prompt_width: int) -> None:
        self.newline_tokens = newline_tokens
        self.lines = lines
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        generated = input_ids[:, self.prompt_width :]
        return torch.isin(generated, self.newline_tokens).sum(-1) >= self.lines


@dataclass(frozen=True)
class Generation:
    """One row's greedy output up to where decoding stopped, its cost and its parsed labels."""

    ids: list[int]
    generated_tokens: int
    label_ids: list[int]
    parsed: bool


def greedy_generate(model: CausalLM, batch: Batch, task: Task, max_new_tokens: int) -> list[Generation]:
    """Greedy decoding of a left-padded prompt batch until each row's label line is complete."""
    pieces = model.pieces
    width = batch["input_ids"].shape[1]
    lines = task.label_line + 1
    # A causal LM or PEFT's wrapper of one: both have ``generate``, which nn.Module's typing hides.
    network = cast(GenerationMixin, model.network)
    output = network.generate(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=pieces.eos_id,
        pad_token_id=pieces.pad_id,
        stopping_criteria=StoppingCriteriaList([LinesDone(model.newline_tokens, lines, width)]),
        synced_gpus=partitioned_across_ranks(model),
    )
    newline = set(model.newline_tokens.tolist())
    generations = []
    for row in output[:, width:].tolist():
        kept, count = cut_at_stop(row, pieces, newline, lines)
        text = pieces.tokenizer.decode(kept, skip_special_tokens=True)
        assert isinstance(text, str)  # one sequence of ids decodes to one string
        label_ids, parsed = read_labels(text, task.label_line)
        generations.append(Generation(kept, count, label_ids, parsed))
    return generations


def decode_lines(tokenizer: PreTrainedTokenizerBase, rows: list[list[int]]) -> list[str]:
    """Each generated row as text, special tokens dropped and the closing newline stripped."""
    return [text.rstrip() for text in tokenizer.batch_decode(rows, skip_special_tokens=True)]


def cut_at_stop(ids: Sequence[int], pieces: Pieces, newline: set[int], lines: int) -> tuple[list[int], int]:
    """A generated row up to where decoding stops (EOS, or the ``lines``-th line end), and the tokens spent.

    EOS/pad ends a row and is dropped from the text but counted; the closing newline is kept and counted.
    """
    seen = 0
    for i, token in enumerate(ids):
        if token in (pieces.eos_id, pieces.pad_id):
            return list(ids[:i]), i + 1
        seen += token in newline
        if seen >= lines:
            return list(ids[: i + 1]), i + 1
    return list(ids), len(ids)
