"""Generative methods: a decoder learns to write a comment's label names, with or without reasoning.

Every method is a set of :class:`Task` s — a prompt (an optional task prefix and the comment) and a target
of lines in a fixed order — trained with cross-entropy on the target tokens only (the prompt is masked,
the closing EOS is kept: Polyglot's pad token *is* its EOS, so it cannot be masked by id):

    prompt:  [prefix]댓글: <comment>\\n
    target:  이유: <reasoning>\\n감정: <label>, <label>, ...<eos>          (explain_then_predict)

``label_only`` writes the label line alone, ``predict_then_explain`` the label line then the reasoning,
``multitask`` (distilling step-by-step, Hsieh et al. 2023) trains a label task and a rationale task on the
same comment with different prefixes and infers with the label task only. Reasoning is never an input:
test comments have none.

Inference greedily decodes a left-padded batch until the label line is complete (its closing newline, or
EOS) and parses the names by exact match after normalisation (:func:`emoreason.labels.parse_labels`).
Two score modes (``inference``):

- ``generate``: 0/1 scores from the parsed labels (the threshold is irrelevant); a label line that is
  missing or holds anything but label names counts as unparseable (names that did match still count).
- ``score``: a probability per label, so a threshold can be tuned on validation like the classifier's.
  With G the parsed greedy set, label l scores σ(log P(G ∪ {l}) − log P(G ∖ {l})): the model's own
  sequence likelihood of the label line with l against without it, the rest held at its choice. That
  respects the canonical order (a first-slot probability would rank late labels low) and costs 45
  teacher-forced label lines per comment after the greedy pass, scored over one cached run of the prompt
  (:mod:`emoreason.models.continuations`). Rows without a parsable label score 0;
  the empty set has probability 0 (every KOTE comment has at least one label, 없음 included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList

from emoreason.data.kote import KoteRow
from emoreason.labels import NUM_LABELS, multi_hot, parse_labels, render_labels
from emoreason.models.backbones import NetworkSource
from emoreason.models.continuations import continuation_logprobs, partitioned_across_ranks
from emoreason.models.heads import position_ids
from emoreason.models.scores import MethodScores

Batch = dict[str, torch.Tensor]
Segment = Literal["labels", "reasoning"]
Inference = Literal["generate", "score"]

COMMENT_MARKER = "댓글:"
LABELS_MARKER = "감정:"
REASONING_MARKER = "이유:"
IGNORE = -100
"""Label id that cross-entropy skips: prompt and padding positions."""


# ----------------------------------------------------------------------------- rendering (the one place)


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) as single spaces: a newline only ever ends a target line."""
    return " ".join(text.split())


def labels_line(ids: Sequence[int]) -> str:
    return f"{LABELS_MARKER} {render_labels(ids)}"


def reasoning_line(reasoning: str) -> str:
    return f"{REASONING_MARKER} {one_line(reasoning)}"


def read_labels(text: str, label_line: int) -> tuple[list[int], bool]:
    """Label ids on line ``label_line`` of a generated ``text``; the flag is False when it did not parse.

    The line must start with the label marker and hold only label names (see :func:`parse_labels`).
    """
    lines = text.split("\n")
    if len(lines) <= label_line:
        return [], False
    line = lines[label_line].strip()
    if not line.startswith(LABELS_MARKER):
        return [], False
    return parse_labels(line[len(LABELS_MARKER) :])


@dataclass(frozen=True)
class Task:
    """One prompt → target mapping: a task prefix before the comment, then target lines in order."""

    name: str
    prefix: str
    segments: tuple[Segment, ...]

    @property
    def label_line(self) -> int:
        """Index of the label line in the target (the inference task must have one)."""
        return self.segments.index("labels")

    def prompt(self, text: str) -> str:
        return f"{self.prefix}{COMMENT_MARKER} {one_line(text)}"


@dataclass(frozen=True)
class Pieces:
    """How one tokenizer spells prompts and targets: lines are tokenised separately, then joined.

    Tokenising each line on its own keeps token boundaries identical in training, in generation and in
    the scoring mode's teacher forcing.
    """

    tokenizer: PreTrainedTokenizerBase
    eos_id: int
    pad_id: int
    newline: tuple[int, ...]

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase) -> Pieces:
        if tokenizer.eos_token_id is None:
            raise ValueError(f"{type(tokenizer).__name__} has no eos token: generative methods need one")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        newline = tuple(tokenizer("\n", add_special_tokens=False)["input_ids"])
        if not newline:
            raise ValueError(
                f"{type(tokenizer).__name__} drops newlines: target lines could not be separated"
            )
        return cls(tokenizer, tokenizer.eos_token_id, pad, newline)

    def ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def close(self, ids: list[int], last: bool) -> list[int]:
        """A line's ids followed by EOS when it ends the target, else by the newline."""
        return [*ids, self.eos_id] if last else [*ids, *self.newline]

    def prompts(self, task: Task, rows: Sequence[KoteRow], max_length: int) -> list[list[int]]:
        """Each row's prompt: the comment cut to ``max_length`` tokens, then the newline."""
        return [[*ids[:max_length], *self.newline] for ids in self.ids([task.prompt(r.text) for r in rows])]

    def label_line_ids(self, label_ids: Sequence[int], task: Task) -> list[int]:
        last = task.label_line == len(task.segments) - 1
        return self.close(self.ids([labels_line(label_ids)])[0], last)


def encode_task(
    task: Task, rows: Sequence[KoteRow], pieces: Pieces, max_length: int, max_reasoning_tokens: int
) -> dict[str, list[list[int]]]:
    """Prompt + target ids, the matching loss labels (prompt masked) and attention masks of ``rows``."""
    if "reasoning" in task.segments:
        missing = [r.id for r in rows if r.reasoning is None]
        if missing:
            raise ValueError(
                f"{len(missing)} training rows have no reasoning (IDs {', '.join(missing[:5])}, ...); task "
                f"{task.name!r} needs it: train with data=kote_reasoning"
            )
    prompts = pieces.prompts(task, rows, max_length)
    lines: dict[Segment, list[list[int]]] = {
        "labels": pieces.ids([labels_line(r.labels) for r in rows]),
        "reasoning": (
            [
                ids[:max_reasoning_tokens]
                for ids in pieces.ids([reasoning_line(r.reasoning or "") for r in rows])
            ]
            if "reasoning" in task.segments
            else []
        ),
    }
    input_ids, labels = [], []
    for i, prompt in enumerate(prompts):
        target: list[int] = []
        for k, segment in enumerate(task.segments):
            target += pieces.close(lines[segment][i], last=k == len(task.segments) - 1)
        input_ids.append(prompt + target)
        labels.append([IGNORE] * len(prompt) + target)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": [[1] * len(ids) for ids in input_ids]}


# ----------------------------------------------------------------------------- the model and decoding


class CausalLM(nn.Module):
    """A causal LM with what decoding needs from its tokenizer (kept out of the state dict)."""

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
        """Next-token logits; positions skip left padding, so a padded row scores as it would alone."""
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
    output = model.network.generate(
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
        label_ids, parsed = read_labels(
            pieces.tokenizer.decode(kept, skip_special_tokens=True), task.label_line
        )
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


def flip_scores(
    model: CausalLM, batch: Batch, generations: list[Generation], task: Task, batch_size: int
) -> torch.Tensor:
    """Per-label σ(log P(G ∪ {l}) − log P(G ∖ {l})) with G each row's parsed greedy set (module docstring)."""
    pieces = model.pieces
    prompts = [
        ids[mask.bool()].tolist()
        for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
    ]
    scores = torch.zeros(len(generations), NUM_LABELS)
    pairs: list[tuple[list[int], list[int]]] = []
    slots: list[tuple[int, int, int]] = []  # (row, label or -1 for G itself, pair index)
    newline = set(model.newline_tokens.tolist())
    for row, generation in enumerate(generations):
        if not generation.label_ids:
            continue
        ends = [i + 1 for i, token in enumerate(generation.ids) if token in newline]
        if len(ends) < task.label_line:  # a multi-newline token hid a line break: no clean prefix
            continue
        prefix = prompts[row] + generation.ids[: ends[task.label_line - 1] if task.label_line else 0]
        chosen = set(generation.label_ids)
        for label in (-1, *range(NUM_LABELS)):
            flipped = chosen if label < 0 else chosen ^ {label}
            if flipped:
                slots.append((row, label, len(pairs)))
                pairs.append((prefix, pieces.label_line_ids(sorted(flipped), task)))
    logprobs = continuation_logprobs(model, pairs, batch_size).cpu()
    chosen_lp = {row: logprobs[i] for row, label, i in slots if label < 0}
    flipped_lp = torch.full((len(generations), NUM_LABELS), float("-inf"))
    for row, label, i in slots:
        if label >= 0:
            flipped_lp[row, label] = logprobs[i]
    for row, generation in enumerate(generations):
        if row not in chosen_lp:
            continue
        inside = multi_hot(generation.label_ids).bool()
        with_label = torch.where(inside, chosen_lp[row], flipped_lp[row])
        without_label = torch.where(inside, flipped_lp[row], chosen_lp[row])
        scores[row] = torch.sigmoid(with_label - without_label)
    return scores


# ----------------------------------------------------------------------------- the methods


@dataclass
class GenerativeMethod:
    """Fine-tune a decoder on its :attr:`tasks`; infer with the first one (see the module docstring)."""

    inference: Inference = "generate"
    max_new_tokens: int = 160
    """Bounds greedy decoding; must cover the label line (KOTE's longest is 21 names, 130 characters)."""
    max_reasoning_tokens: int = 256
    """Reasoning is cut to this many tokens in training targets, so the label line always fits."""
    score_batch_size: int = 256
    """Teacher-forced label lines per forward pass in ``inference=score``."""

    name: ClassVar[str]
    tasks: ClassVar[tuple[Task, ...]]
    padding_side: ClassVar[str] = "left"
    eval_loss: ClassVar[bool] = False
    """Evaluation batches hold prompts only: there is no reasoning at inference to build a target from."""
    diagnostic_names: ClassVar[tuple[str, ...]] = ("unparseable_rate", "generated_tokens")
    """The per-row figures :meth:`detailed_scores` returns, logged as ``val/<name>`` (monitorable)."""

    def task_weights(self) -> tuple[float, ...]:
        return (1.0,)

    def build_model(self, backbone: NetworkSource, tokenizer: PreTrainedTokenizerBase) -> CausalLM:
        if backbone.architecture != "decoder":
            raise ValueError(
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
        values = {}
        for i in range(len(self.tasks)):
            values |= {self._column(i, "input_ids"): pad, self._column(i, "attention_mask"): 0,
                       self._column(i, "labels"): IGNORE}  # fmt: skip
        return values

    def encode(
        self, rows: Sequence[KoteRow], tokenizer: PreTrainedTokenizerBase, max_length: int, *, train: bool
    ) -> dict[str, list[Any]]:
        """Training: every task's prompt + target; evaluation: the inference task's prompt and gold labels."""
        pieces = Pieces.of(tokenizer)
        if not train:
            prompts = pieces.prompts(self.tasks[0], rows, max_length)
            return {
                "input_ids": prompts,
                "attention_mask": [[1] * len(ids) for ids in prompts],
                "targets": [multi_hot(r.labels) for r in rows],
            }
        columns: dict[str, list[Any]] = {}
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
            losses.append(F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                          ignore_index=IGNORE))  # fmt: skip
        total = sum(w * loss for w, loss in zip(self.task_weights(), losses, strict=True))
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


LABEL_TASK = Task("label", "", ("labels",))


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
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"method.alpha must be in [0, 1], got {self.alpha}")

    def task_weights(self) -> tuple[float, ...]:
        return (self.alpha, 1.0 - self.alpha)
