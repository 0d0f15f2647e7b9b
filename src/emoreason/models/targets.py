"""What a generative method reads and writes: prompts, target lines, their token ids and the loss mask.

This is the one place the text format lives, so training targets, greedy decoding's stop rule, parsing and
score mode's teacher forcing all spell it the same way. A :class:`Task` is a prompt (an optional task prefix
and the comment) and a target of lines in a fixed order; training uses cross-entropy on the target tokens
only, so the prompt is masked here, at encode time (``IGNORE`` labels, as litgpt's ``SFTDataset`` does with
``mask_prompt``), not in the loss. The closing EOS is kept: Polyglot's pad token *is* its EOS, so it could
not be masked by id.

    prompt:  [prefix]댓글: <comment>\\n
    target:  이유: <reasoning>\\n감정: <label>, <label>, ...<eos>          (explain_then_predict)

Label names are written in KOTE order and read back by exact match after normalisation
(:func:`emoreason.labels.parse_labels`). Reasoning is never an input: test comments have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from transformers import PreTrainedTokenizerBase

from emoreason.data.kote import KoteRow
from emoreason.labels import parse_labels, render_labels

Segment = Literal["labels", "reasoning"]

COMMENT_MARKER = "댓글:"
LABELS_MARKER = "감정:"
REASONING_MARKER = "이유:"
IGNORE = -100
"""Label id that cross-entropy skips: prompt and padding positions."""


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


LABEL_TASK = Task("label", "", ("labels",))
"""The label line alone, without a prefix (``label_only``)."""


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
        """Raises ``ValueError`` for a tokenizer without EOS or one that drops newlines."""
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
    """Prompt + target ids, the matching loss labels (prompt masked) and attention masks of ``rows``.

    Raises ``ValueError`` naming the rows without reasoning when ``task`` writes reasoning.
    """
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
