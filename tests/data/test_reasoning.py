"""The reasoning dataset format: what generation writes and training reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emoreason.data.kote import read_kote_tsv
from emoreason.data.reasoning import (
    ReasoningFormatError,
    ReasoningRecord,
    Usage,
    read_reasoning_jsonl,
    write_reasoning_jsonl,
)
from emoreason.io import iter_jsonl

GOOD = {"id": "1", "text": "좋다", "labels": ["기쁨", "환영/호의"], "reasoning": "기뻐 보인다."}


def _write_lines(path: Path, *objs: object) -> Path:
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs), encoding="utf-8")
    return path


def test_round_trip_keeps_every_field_and_orders_labels_like_kote(tmp_path: Path) -> None:
    record = ReasoningRecord(
        id="7",
        text="헐 대박",
        labels=("감동/감탄", "놀람"),
        reasoning="감탄사에서 놀람이 드러난다.",
        model="gpt-4o-mini-2024-07-18",
        prompt_version="kote-reasoning-v1",
        usage=Usage(100, 50, 150),
        finish_reason="stop",
    )
    path = write_reasoning_jsonl(tmp_path / "r.jsonl", [record])
    assert read_reasoning_jsonl(path) == [record]

    shuffled = _write_lines(tmp_path / "s.jsonl", {**GOOD, "labels": ["기쁨", "불평/불만"]})
    (read,) = read_reasoning_jsonl(shuffled)
    assert read.labels == ("불평/불만", "기쁨")  # dataset order: ids 0 and 42
    assert read.label_ids == (0, 42)
    assert read.model is None and read.usage is None


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "reasoning"}), "missing key(s) ['reasoning']"),
        (json.dumps({**GOOD, "labels": ["기쁨", "행복함"]}), "unknown label name(s) ['행복함']"),
        (json.dumps({**GOOD, "labels": []}), "non-empty list"),
        (json.dumps({**GOOD, "reasoning": "  "}), "empty 'reasoning'"),
        (json.dumps({**GOOD, "usage": {"prompt_tokens": 1}}), "'usage' must hold"),
    ],
)
def test_defects_are_errors_naming_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD, ensure_ascii=False) + "\n" + bad_line + "\n", encoding="utf-8")
    with pytest.raises(ReasoningFormatError) as info:
        read_reasoning_jsonl(path)
    assert f"{path}:2:" in str(info.value)
    assert message in str(info.value)


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "dup.jsonl", GOOD, {**GOOD, "id": "2"}, GOOD)
    with pytest.raises(ReasoningFormatError, match=r"dup.jsonl:3: duplicate id 1 \(first seen on line 1\)"):
        read_reasoning_jsonl(path)


def test_a_torn_last_line_is_tolerated_only_when_asked_and_only_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "torn.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + '{"id": "2", "te', encoding="utf-8")
    with pytest.raises(ReasoningFormatError, match=":2: not valid JSON"):
        read_reasoning_jsonl(path)  # a dataset is written atomically: a torn line means damage
    assert [n for n, _ in iter_jsonl(path, error=ReasoningFormatError, tolerate_torn_tail=True)] == [1]

    path.write_text('{"id": "2", "te\n' + json.dumps(GOOD) + "\n", encoding="utf-8")
    with pytest.raises(ReasoningFormatError, match=":1: not valid JSON"):
        list(iter_jsonl(path, error=ReasoningFormatError, tolerate_torn_tail=True))


def test_writer_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "out" / "r.jsonl"
    old = ReasoningRecord(id="1", text="a", labels=("기쁨",), reasoning="r")
    write_reasoning_jsonl(path, [old])

    class Exploding(ReasoningRecord):
        def to_json(self) -> dict[str, object]:
            raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        write_reasoning_jsonl(path, [old, Exploding(id="2", text="b", labels=("기쁨",), reasoning="r")])
    assert read_reasoning_jsonl(path) == [old]
    assert [p.name for p in path.parent.iterdir()] == ["r.jsonl"]
    with pytest.raises(ValueError, match="duplicate ids"):
        write_reasoning_jsonl(path, [old, old])


@pytest.mark.shared_data
def test_shared_sample_parses_and_matches_kote_val(shared_reasoning_jsonl: Path, kote_dir: Path) -> None:
    records = read_reasoning_jsonl(shared_reasoning_jsonl)
    assert len(records) == 1000
    val = {row.id: row for row in read_kote_tsv(kote_dir / "val.tsv")}
    for record in records:
        assert record.text == val[record.id].text
        assert record.label_ids == val[record.id].labels
