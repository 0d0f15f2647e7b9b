"""Score mode's label probabilities from the model's own sequence likelihoods of label lines.

With G the parsed greedy set, label l scores σ(log P(G ∪ {l}) − log P(G ∖ {l})): the model's likelihood of
the label line with l against without it, the rest held at its choice. That respects the canonical order (a
first-slot probability would rank late labels low) and costs 45 teacher-forced label lines per comment after
the greedy pass, scored over one cached run of the prompt (:mod:`emoreason.models.continuations`). Rows
without a parsable label score 0; the empty set has probability 0 (every KOTE comment has at least one
label, 없음 included). Kept apart from decoding, which it follows, because it alone teacher-forces.
"""

from __future__ import annotations

import torch

from emoreason.labels import NUM_LABELS, multi_hot
from emoreason.models.continuations import continuation_logprobs
from emoreason.models.decoding import CausalLM, Generation
from emoreason.models.targets import Task

Batch = dict[str, torch.Tensor]


def flip_scores(
    model: CausalLM, batch: Batch, generations: list[Generation], task: Task, batch_size: int
) -> torch.Tensor:
    """(rows, 44) per-label σ(log P(G ∪ {l}) − log P(G ∖ {l})), G each row's parsed greedy set (see above).

    ``batch`` holds the left-padded prompts the ``generations`` continue; ``batch_size`` label lines run
    per forward pass.
    """
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
