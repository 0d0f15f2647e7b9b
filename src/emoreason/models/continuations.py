"""Teacher-forced log-likelihood of many continuations of few prefixes, each prefix run once.

Score mode asks, per comment, for log P(line | prompt) of 45 label lines after one prompt. Running each
(prompt + line) through the network would repeat the prompt 45 times and project every prompt position
onto the vocabulary (3,095 tokens per KOTE comment on average). Here each distinct prefix runs once with
one continuation, its trunk (the greedy label line); every other continuation shares the trunk's tokens
up to where it adds or drops its label, so only its tokens after that branch point run, over the trunk's
KV cache (Hugging Face ``DynamicCache``, its rows copied per continuation, the trunk's tokens after the
branch point masked out). The vocabulary projection and log-softmax are computed only at positions that
predict a continuation token (``logits_to_keep``). The sums equal those of full forwards up to
floating-point reordering (``tests/models/test_continuations.py`` checks them against full forwards).

Under DeepSpeed ZeRO-3 every forward is a collective (parameter gathers), so all ranks agree on their
largest pass count before the first pass and the ranks with less work run idle one-token passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import distributed as dist
from torch import nn
from torch.nn import functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from emoreason.models.heads import position_ids

if TYPE_CHECKING:
    from emoreason.models.decoding import CausalLM


def partitioned_across_ranks(model: nn.Module) -> bool:
    """Whether ``model``'s parameters are DeepSpeed ZeRO-3 partitions spread over several ranks.

    Then every forward gathers parameters from all ranks (a collective), so all ranks must run the same
    number of forwards or the ones that ran more wait forever: generation keeps stepping until every rank
    is done (Hugging Face's ``synced_gpus``, which it only switches on by itself under its own Trainer) and
    teacher-forced scoring pads its number of passes to the busiest rank's.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return False
    return any(hasattr(p, "ds_id") for p in model.parameters())


@dataclass
class Prefix:
    """One distinct prefix, the continuation run with it (the trunk), and how the others branch off it."""

    ids: list[int]
    trunk: list[int]
    branches: list[tuple[int, int, list[int]]] = field(default_factory=list)
    """(pair index, tokens shared with the trunk, continuation) for every pair of this prefix."""


def group_by_prefix(pairs: Sequence[tuple[list[int], list[int]]]) -> list[Prefix]:
    """The distinct prefixes of ``pairs`` in first-seen order; each one's first continuation is its trunk.

    In score mode the first continuation of a comment is its greedy label line and every other one adds or
    drops one label, so each shares the trunk's tokens up to that label's slot.
    """
    groups: dict[tuple[int, ...], Prefix] = {}
    for index, (prefix, continuation) in enumerate(pairs):
        if not continuation:
            raise ValueError(f"pair {index} has an empty continuation: there is nothing to score")
        group = groups.setdefault(tuple(prefix), Prefix(list(prefix), list(continuation)))
        shared = 0
        limit = min(len(continuation), len(group.trunk))
        while shared < limit and continuation[shared] == group.trunk[shared]:
            shared += 1
        group.branches.append((index, shared, list(continuation)))
    return list(groups.values())


def _run_trunks(model: CausalLM, groups: Sequence[Prefix]) -> tuple[torch.Tensor, torch.Tensor, DynamicCache]:
    """One left-padded pass over prefix + trunk of ``groups``, projected onto the vocabulary at the trunk.

    Returns the log-softmax at the last ``keep`` positions (G, keep, vocab) — window index
    ``keep - len(trunk) - 1 + j`` predicts trunk token j —, the attention mask (G, width) and the cache.
    """
    device = model.newline_tokens.device
    sequences = [g.ids + g.trunk for g in groups]
    width = max(map(len, sequences))
    ids = torch.full((len(groups), width), model.pieces.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, sequence in enumerate(sequences):
        ids[row, width - len(sequence) :] = torch.tensor(sequence)
        mask[row, width - len(sequence) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    keep = max(len(g.trunk) for g in groups) + 1
    out = model.network(
        input_ids=ids,
        attention_mask=mask,
        position_ids=position_ids(mask),
        use_cache=True,
        logits_to_keep=keep,
    )
    return torch.log_softmax(out.logits.float(), dim=-1), mask, out.cache


def _run_rests(
    model: CausalLM,
    chunk: Sequence[tuple[int, list[int]]],
    past_mask: torch.Tensor,
    cache: DynamicCache,
    span: slice,
) -> torch.Tensor:
    """Summed log-probability of each rest's tokens after its first, over its prefix's cached keys/values.

    ``chunk`` holds (group row, rest of at least two tokens); ``past_mask`` (len(chunk), columns of
    ``span``) hides the trunk tokens after each branch point; ``span`` is the cache's columns any row of
    the chunk attends to (fewer keys to copy and attend over). Returns one sum per entry of ``chunk``.
    """
    device = past_mask.device
    rows = torch.tensor([row for row, _ in chunk], device=device)
    width = max(len(rest) - 1 for _, rest in chunk)
    ids = torch.full((len(chunk), width), model.pieces.pad_id, dtype=torch.long)
    targets = torch.zeros_like(ids)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for i, (_, rest) in enumerate(chunk):
        ids[i, : len(rest) - 1] = torch.tensor(rest[:-1], dtype=torch.long)
        targets[i, : len(rest) - 1] = torch.tensor(rest[1:], dtype=torch.long)
        mask[i, : len(rest) - 1] = True
    ids, targets, mask = ids.to(device), targets.to(device), mask.to(device)
    rows_kv = []
    for layer in cache.layers:
        assert isinstance(layer, DynamicLayer) and layer.keys is not None and layer.values is not None
        rows_kv.append((layer.keys[rows, :, span], layer.values[rows, :, span]))
    rows_cache = DynamicCache(ddp_cache_data=rows_kv)
    start = past_mask.sum(-1, keepdim=True)  # real tokens before: where each rest's positions go on
    out = model.network(
        input_ids=ids,
        attention_mask=torch.cat([past_mask, mask.long()], dim=1),
        position_ids=start + torch.arange(width, device=device),
        cache=rows_cache,
        use_cache=True,
        logits_to_keep=mask,  # flattened to the kept positions, row by row
    )
    kept = -F.cross_entropy(out.logits.float(), targets[mask], reduction="none")
    row_of_kept = torch.arange(len(chunk), device=device)[:, None].expand_as(mask)[mask]
    return torch.zeros(len(chunk), device=device).index_add_(0, row_of_kept, kept)


def continuation_logprobs(
    model: CausalLM, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int
) -> torch.Tensor:
    """Sum of log P(continuation | prefix) per (prefix, continuation) pair, in fp32, shape (len(pairs),).

    Distinct prefixes run ``batch_size`` at a time, once each; their continuations ``batch_size`` at a time
    over a copy of the cached prefix rows (memory: ``batch_size`` × prefix length × the model's KV size).
    """
    device = model.newline_tokens.device
    groups = group_by_prefix(pairs)
    batches = [groups[start : start + batch_size] for start in range(0, len(groups), batch_size)]
    passes = sum(1 + math.ceil(_branching(batch) / batch_size) for batch in batches)
    idle_passes = 0
    if partitioned_across_ranks(model):  # agree on the pass count before any pass: each one is a collective
        most = torch.tensor(passes, device=device)
        dist.all_reduce(most, op=dist.ReduceOp.MAX)
        idle_passes = int(most) - passes
    totals = torch.zeros(len(pairs), device=device)
    for batch in batches:
        logprobs, prefix_mask, cache = _run_trunks(model, batch)
        keep, width = logprobs.shape[1], prefix_mask.shape[1]
        # Trunk log-probs summed from its start: shared[row, d] = log P(trunk[:d] | prefix).
        trunks = torch.zeros(len(batch), keep - 1, dtype=torch.long, device=device)
        for row, group in enumerate(batch):
            trunks[row, keep - 1 - len(group.trunk) :] = torch.tensor(group.trunk)
        on_trunk = logprobs[:, :-1].gather(-1, trunks[..., None]).squeeze(-1)
        cumulative = torch.cat([torch.zeros(len(batch), 1, device=device), on_trunk.cumsum(-1)], dim=1)
        rests: list[tuple[int, int, int, list[int]]] = []  # (pair, row, trunk column where it branches, rest)
        for row, group in enumerate(batch):
            start = keep - 1 - len(group.trunk)  # window index predicting trunk[0]
            for index, shared, continuation in group.branches:
                window = start + shared  # predicts the continuation's first token off the trunk
                total = cumulative[row, window] - cumulative[row, start]
                if shared < len(continuation):
                    total = total + logprobs[row, window, continuation[shared]]
                totals[index] = total
                if len(continuation) - shared >= 2:
                    rests.append((index, row, width - len(group.trunk) + shared, continuation[shared:]))
        rests.sort(key=lambda r: len(r[3]))  # similar lengths share a pass: less padding
        columns = torch.arange(width, device=device)
        for begin in range(0, len(rests), batch_size):
            chunk = rests[begin : begin + batch_size]
            rows = torch.tensor([row for _, row, _, _ in chunk], device=device)
            branch = torch.tensor([column for _, _, column, _ in chunk], device=device)
            past_mask = prefix_mask[rows] * (columns < branch[:, None])
            attended = past_mask.any(0).nonzero()
            span = slice(int(attended[0]), int(attended[-1]) + 1)
            at = torch.tensor([i for i, _, _, _ in chunk], device=device)
            rests_chunk = [(row, rest) for _, row, _, rest in chunk]
            totals[at] += _run_rests(model, rests_chunk, past_mask[:, span], cache, span)
    one_token = torch.ones(1, 1, dtype=torch.long, device=device)
    for _ in range(idle_passes):  # forwards whose parameter gathers the busier ranks wait for
        model(one_token * model.pieces.pad_id, one_token)
    return totals


def _branching(groups: Sequence[Prefix]) -> int:
    """Continuations that still need a pass of their own: two or more tokens after leaving the trunk."""
    return sum(len(c) - shared >= 2 for g in groups for _, shared, c in g.branches)
