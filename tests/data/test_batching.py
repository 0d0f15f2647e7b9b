import random

import pytest
import torch

from emoreason.data.batching import EncodedDataset, LengthGroupedBatchSampler, pad_collate


def lengths(n=2000, seed=0):
    rng = random.Random(seed)
    return [max(3, int(rng.lognormvariate(3.3, 0.6))) for _ in range(n)]


def padding_efficiency(batches, lens):
    real = sum(lens[i] for b in batches for i in b)
    processed = sum(max(lens[i] for i in b) * len(b) for b in batches)
    return real / processed


def test_every_row_once_per_epoch_and_epochs_differ():
    lens = lengths()
    sampler = LengthGroupedBatchSampler(lens, 32, shuffle=True, seed=1)
    first = list(sampler)
    assert sorted(i for b in first for i in b) == list(range(len(lens)))
    assert list(sampler) == first  # same epoch, same order: reproducible
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_length_grouping_makes_padding_small():
    lens = lengths()
    grouped = list(LengthGroupedBatchSampler(lens, 32, shuffle=True, pool_factor=50))
    plain = list(LengthGroupedBatchSampler(lens, 32, shuffle=True, pool_factor=1))
    assert padding_efficiency(grouped, lens) > 0.9
    assert padding_efficiency(plain, lens) < 0.8


def test_shards_are_disjoint_and_equal_for_training():
    lens = lengths(1000)
    shards = [
        list(LengthGroupedBatchSampler(lens, 32, shuffle=True, num_replicas=3, rank=r)) for r in range(3)
    ]
    assert len({len(s) for s in shards}) == 1
    seen = [i for s in shards for b in s for i in b]
    assert len(seen) == len(set(seen))
    eval_shards = [
        list(LengthGroupedBatchSampler(lens, 64, shuffle=False, num_replicas=3, rank=r)) for r in range(3)
    ]
    assert sorted(i for s in eval_shards for b in s for i in b) == list(range(1000))  # eval keeps every row


@pytest.mark.parametrize(
    ("rows", "batch_size", "ranks"), [(1000, 64, 3), (1000, 128, 8), (9, 4, 4), (5, 64, 5)]
)
def test_evaluation_shards_have_equal_batch_counts(rows, batch_size, ranks):
    """ZeRO-3 gathers parameters in every forward: a rank with an extra batch would hang the others."""
    lens = lengths(rows)
    shards = [
        list(LengthGroupedBatchSampler(lens, batch_size, shuffle=False, num_replicas=ranks, rank=r))
        for r in range(ranks)
    ]
    assert len({len(s) for s in shards}) == 1
    assert all(0 < len(b) <= batch_size for s in shards for b in s)
    assert sorted(i for s in shards for b in s for i in b) == list(range(rows))


def test_fewer_evaluation_rows_than_ranks_is_an_error():
    with pytest.raises(ValueError, match="3 evaluation rows cannot give each of 4 ranks a batch"):
        list(LengthGroupedBatchSampler([5, 6, 7], 8, shuffle=False, num_replicas=4, rank=0))


def test_pad_collate_pads_to_longest_on_either_side():
    ds = EncodedDataset({"input_ids": [[5, 6, 7], [8]], "targets": [torch.ones(2), torch.zeros(2)]})
    right = pad_collate([ds[0], ds[1]], {"input_ids": 0})
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert right["targets"].shape == (2, 2) and right["index"].tolist() == [0, 1]
    left = pad_collate([ds[0], ds[1]], {"input_ids": 0}, padding_side="left")
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]


def test_pad_to_multiple_rounds_width_up():
    ds = EncodedDataset({"input_ids": [[1] * 9, [2] * 3]})
    batch = pad_collate([ds[0], ds[1]], {"input_ids": 0}, pad_to_multiple_of=8)
    assert batch["input_ids"].shape == (2, 16)
    assert pad_collate([ds[1]], {"input_ids": 0}, pad_to_multiple_of=8)["input_ids"].shape == (1, 8)
