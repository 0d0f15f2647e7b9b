"""data=kote_reasoning: KOTE rows joined with a reasoning dataset by ID, and every way that can go wrong."""

from __future__ import annotations

import json

import pytest

from emoreason.data.sources import KoteSource, ReasoningJoinError, ReasoningSource
from emoreason.train import train
from tests.support.reasoning import TINY_NEOX_OVERRIDES

pytestmark = pytest.mark.shared_data


def _source(cls, root, **kwargs):
    common = {"root": str(root), "split_scheme": "val_holdout", "download": False, "verify_checksums": False}
    return cls(**common, **kwargs)


def test_join_keeps_kote_plain_splits_and_drops_unreasoned_training_rows_only_when_asked(
    reasoning_kote_dir, reasoning_path
):
    plain = _source(KoteSource, reasoning_kote_dir).load()
    joined = _source(
        ReasoningSource, reasoning_kote_dir, reasoning_path=str(reasoning_path), missing_reasoning="drop"
    ).load()
    reasoned_ids = {
        json.loads(line)["id"] for line in reasoning_path.read_text(encoding="utf-8").splitlines()
    }
    assert {r.id for r in joined.train} == {r.id for r in plain.train} & reasoned_ids
    assert all(r.reasoning for r in joined.train)
    assert [r.id for r in joined.val] == [r.id for r in plain.val]  # evaluation rows are kept whole
    assert [r.labels for r in joined.test] == [r.labels for r in plain.test]
    assert sum(r.reasoning is not None for r in joined.val) == len({r.id for r in plain.val} & reasoned_ids)
    dropped = len(plain.train) - len(joined.train)
    assert f"{dropped} training rows without reasoning dropped" in joined.sources["reasoning_rows"]

    subset = _source(
        ReasoningSource,
        reasoning_kote_dir,
        reasoning_path=str(reasoning_path),
        missing_reasoning="drop",
        max_train_rows=10,
    ).load()
    assert len(subset.train) == 10 and all(r.reasoning for r in subset.train)  # subsampled after the drop


def test_missing_reasoning_is_an_error_with_the_count_by_default(reasoning_kote_dir, reasoning_path):
    plain = _source(KoteSource, reasoning_kote_dir).load()
    with pytest.raises(
        ReasoningJoinError, match=rf"of {len(plain.train)} training rows have no reasoning"
    ) as err:
        _source(ReasoningSource, reasoning_kote_dir, reasoning_path=str(reasoning_path)).load()
    assert "data.source.missing_reasoning=drop" in str(err.value)


def test_a_record_that_disagrees_with_its_kote_row_names_file_line_and_id(
    reasoning_kote_dir, reasoning_path, tmp_path
):
    lines = reasoning_path.read_text(encoding="utf-8").splitlines(keepends=True)
    record = json.loads(lines[2])
    record["text"] += " (edited)"
    edited = tmp_path / "edited.jsonl"
    edited.write_text(
        "".join([*lines[:2], json.dumps(record, ensure_ascii=False) + "\n", *lines[3:]]), "utf-8"
    )
    source = _source(
        ReasoningSource, reasoning_kote_dir, reasoning_path=str(edited), missing_reasoning="drop"
    )
    with pytest.raises(ReasoningJoinError, match=rf"edited.jsonl:3: id {record['id']} has text different"):
        source.load()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reasoning_path": "nowhere/reasoning.jsonl"}, "does not exist: set KOTE_REASONING_PATH"),
        ({"missing_reasoning": "ignore"}, "must be 'error' or 'drop'"),
    ],
)
def test_bad_settings_fail_before_anything_is_read(reasoning_kote_dir, reasoning_path, kwargs, message):
    settings = {"reasoning_path": str(reasoning_path), **kwargs}
    with pytest.raises(ReasoningJoinError, match=message):
        _source(ReasoningSource, reasoning_kote_dir, **settings).load()


def test_a_kote_reasoning_run_with_missing_reasoning_fails_clearly(
    compose_train, reasoning_kote_dir, reasoning_path
):
    cfg = compose_train(
        f"paths.kote_dir={reasoning_kote_dir}",
        f"paths.reasoning_path={reasoning_path}",
        "data=kote_reasoning",
        "data.source.split_scheme=val_holdout",
        "data.source.verify_checksums=false",
        "data.source.download=false",
        *TINY_NEOX_OVERRIDES,
        "method=explain_then_predict",
        "logger=csv",
    )
    with pytest.raises(ReasoningJoinError, match=r"training rows have no reasoning in .*reasoning.jsonl"):
        train(cfg)
