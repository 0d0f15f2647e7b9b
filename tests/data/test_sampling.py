import pytest

from emoreason.data import kote
from emoreason.data.kote import KoteDownloadError
from emoreason.data.reasoning import ReasoningRecord, write_reasoning_jsonl
from emoreason.data.sampling import load_splits, seed_sample, seeded_shuffle
from emoreason.data.sources import KoteSource, ReasoningSource
from emoreason.labels import LABELS
from tests.support.project import write_kote_tsv


@pytest.fixture
def small_kote(tmp_path, monkeypatch):
    """val (50 rows) and test (20 rows) only, like ../shared; downloads refused."""
    monkeypatch.setattr(kote, "UPSTREAM_URL", "http://127.0.0.1:9/{name}")
    write_kote_tsv(tmp_path / "val.tsv", [(f"v{i}", f"val text {i}", str(i % 44)) for i in range(50)])
    write_kote_tsv(tmp_path / "test.tsv", [(f"t{i}", f"test text {i}", str(i % 44)) for i in range(20)])
    return tmp_path


def scheme_kwargs():
    return {"verify_checksums": False}


def test_val_holdout_is_disjoint_seeded_and_covers_val(small_kote):
    splits = load_splits(small_kote, "val_holdout", holdout_size=10, seed=3, **scheme_kwargs())
    assert splits.scheme == "val_holdout" and splits.sizes() == {"train": 40, "val": 10, "test": 20}
    train_ids, val_ids = {r.id for r in splits.train}, {r.id for r in splits.val}
    assert not train_ids & val_ids and len(train_ids | val_ids) == 50
    again = load_splits(small_kote, "val_holdout", holdout_size=10, seed=3, **scheme_kwargs())
    other = load_splits(small_kote, "val_holdout", holdout_size=10, seed=4, **scheme_kwargs())
    assert again.val == splits.val and other.val != splits.val


def test_auto_falls_back_to_val_holdout_when_train_cannot_be_had(small_kote):
    splits = load_splits(small_kote, "auto", holdout_size=10, **scheme_kwargs())
    assert splits.scheme == "val_holdout"


def test_official_without_train_is_a_clear_error(small_kote):
    with pytest.raises(KoteDownloadError, match=r"train\.tsv"):
        load_splits(small_kote, "official", **scheme_kwargs())


def test_official_uses_train_tsv_when_present(small_kote):
    write_kote_tsv(small_kote / "train.tsv", [(f"r{i}", f"train {i}", "1") for i in range(30)])
    splits = load_splits(small_kote, "auto", **scheme_kwargs())
    assert splits.scheme == "official" and splits.sizes() == {"train": 30, "val": 50, "test": 20}


def test_unknown_scheme_and_bad_holdout_are_errors(small_kote):
    with pytest.raises(ValueError, match="split_scheme"):
        load_splits(small_kote, "random", **scheme_kwargs())
    with pytest.raises(ValueError, match="holdout_size"):
        load_splits(small_kote, "val_holdout", holdout_size=50, **scheme_kwargs())


def test_seed_sample_depends_on_ids_and_seed_only(small_kote):
    pool = load_splits(small_kote, "val_holdout", holdout_size=10, **scheme_kwargs()).train
    sample = seed_sample(pool, 7, seed=1)
    assert sample == seed_sample(list(reversed(pool)), 7, seed=1)
    assert sample != seed_sample(pool, 7, seed=2)
    assert [r.id for r in sample] == sorted(r.id for r in sample)
    with pytest.raises(ValueError, match="exceeds the pool"):
        seed_sample(pool, 41, seed=1)
    with pytest.raises(ValueError, match="positive"):
        seed_sample(pool, 0, seed=1)


def test_source_subsamples_train_only(small_kote):
    splits = KoteSource(
        str(small_kote), "val_holdout", holdout_size=10, max_train_rows=15, verify_checksums=False
    ).load()
    assert splits.sizes() == {"train": 15, "val": 10, "test": 20}
    assert seeded_shuffle(splits.train, 0) == seeded_shuffle(list(reversed(splits.train)), 0)


@pytest.mark.parametrize("sample_seed", [5, 7])
def test_training_joins_the_seed_samples_reasoning_by_id_without_drawing_again(
    small_kote, tmp_path, sample_seed
):
    """generate.py draws the seed sample; data=kote_reasoning trains on just its rows of the train split."""
    splits = load_splits(small_kote, "val_holdout", holdout_size=10, **scheme_kwargs())
    sample = seed_sample(splits.train + splits.val, 12, seed=sample_seed)
    records = [
        ReasoningRecord(r.id, r.text, tuple(LABELS[i] for i in r.labels), f"why {r.id}")
        for r in reversed(sample)
    ]
    dataset = write_reasoning_jsonl(tmp_path / "reasoning.jsonl", records)
    joined = ReasoningSource(
        root=str(small_kote),
        split_scheme="val_holdout",
        holdout_size=10,
        verify_checksums=False,
        reasoning_path=str(dataset),
        missing_reasoning="drop",
    ).load()
    sampled = {r.id for r in sample}
    assert 0 < len(joined.train) < len(splits.train)
    assert {r.id for r in joined.train} == sampled & {r.id for r in splits.train}
    assert all(r.reasoning == f"why {r.id}" for r in joined.train)
    assert {r.id for r in joined.val if r.reasoning} == sampled & {r.id for r in splits.val}
