"""A reasoning dataset's statistics (leakage, duplicates, refusals, truncations) and its dataset card."""

import json

import pytest

from emoreason.data.reasoning_stats import (
    CardInfo,
    dataset_card,
    main,
    reasoning_stats,
    write_generation_card,
)

RECORDS = [
    # 짜증 and 화남/분노 appear verbatim; 불평/불만 only in part (불만), which is not its full name
    {
        "id": "1",
        "text": "아 진짜",
        "labels": ["불평/불만", "화남/분노", "짜증"],
        "reasoning": "짜증이 묻어나고 화남/분노가 보인다. 불만도 있다.",
        "finish_reason": "stop",
    },
    {
        "id": "2",
        "text": "좋아요",
        "labels": ["기쁨"],
        "reasoning": "밝은 어조가 느껴진다.",
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    },
    {"id": "3", "text": "음", "labels": ["없음"], "reasoning": "밝은 어조가 느껴진다."},
    {
        "id": "4",
        "text": "...",
        "labels": ["슬픔"],
        "reasoning": "죄송하지만 이 요청에는 답변드릴 수 없습니다.",
    },
    {
        "id": "5",
        "text": "헐",
        "labels": ["놀람", "경악"],
        "reasoning": "놀람이 크게 드러나고 경악스러운 상황이라",
        "finish_reason": "length",
    },
]


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "reasoning.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    return path


def test_leakage_equals_a_direct_count(dataset):
    stats = reasoning_stats(dataset)
    direct = [name for r in RECORDS for name in r["labels"] if name in r["reasoning"]]
    assert stats.leaked_labels == len(direct) == 4  # 짜증, 화남/분노, 놀람, 경악 (in 경악스러운)
    assert stats.gold_labels == 8 and stats.records_with_leak == 2
    assert stats.leaked_by_label == {"화남/분노": 1, "짜증": 1, "놀람": 1, "경악": 1}
    assert stats.leak_rate == pytest.approx(4 / 8)


def test_a_label_name_inside_a_longer_one_is_not_a_leak_of_the_shorter(tmp_path):
    path = tmp_path / "reasoning.jsonl"
    records = [
        {"id": "1", "text": "헐", "labels": ["없음", "어이없음"], "reasoning": "어이없음이 드러난다."},
        {"id": "2", "text": "음", "labels": ["없음", "재미없음"], "reasoning": "재미없음. 감정은 없음."},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    stats = reasoning_stats(path)
    # 없음 leaks only on its own (record 2), not inside 어이없음 (record 1)
    assert stats.leaked_by_label == {"어이없음": 1, "재미없음": 1, "없음": 1}


def test_duplicates_refusals_truncations_and_lengths(dataset):
    stats = reasoning_stats(dataset)
    assert stats.records == 5 and stats.duplicate_reasonings == 1 and stats.refusals == 1
    assert stats.finish_length == 1 and stats.unfinished_sentences == 1  # record 5 stops mid-sentence
    lengths = sorted(len(r["reasoning"]) for r in RECORDS)
    assert stats.length_chars["min"] == lengths[0] and stats.length_chars["max"] == lengths[-1]
    assert stats.length_chars["median"] == lengths[2]
    assert stats.repeated_closings == [("밝은 어조가 느껴진다.", 2)]  # the last three words
    assert stats.models == {"not recorded": 4, "gpt-4o-mini": 1} and stats.tokens["total_tokens"] == 15


def test_the_card_has_hugging_face_metadata_source_prompt_model_cost_statistics_license(dataset):
    info = CardInfo(prompt="댓글: {text}\n감정: {labels}", prompt_version="v1", cost="$0.01", license="mit")
    card = dataset_card(reasoning_stats(dataset), info)
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert "license: mit" in front and "- ko" in front and "size_categories:\n- n<1K" in front
    for section in ("## Source data", "## Creation", "## Statistics", "## License"):
        assert section in body
    assert "- Prompt version: v1" in body and "- Cost: $0.01" in body and "댓글: {text}" in body
    assert "| gold label names verbatim in their reasoning (leakage) | 4 (50.0%) of 8 gold labels |" in body


def test_the_command_prints_statistics_writes_a_card_and_fails_cleanly(dataset, tmp_path, capsys):
    card = tmp_path / "card.md"
    assert main([str(dataset), "--json", "--card", str(card), "--cost", "$0.01"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[: printed.rindex("}") + 1])["leaked_labels"] == 4
    assert card.read_text(encoding="utf-8").startswith("---\nlicense: mit\n")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "1"}\n', encoding="utf-8")
    assert main([str(broken)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {broken}:1: missing key(s)")


def test_a_generation_summary_gets_its_card_beside_the_dataset(dataset):
    summary = {
        "output": str(dataset),
        "model": "gpt-4o-mini-2024-07-18",
        "prompt_version": "kote-reasoning-v1",
        "dataset_cost_usd": 0.0123,
    }
    card = write_generation_card(summary, "System:\n감정 분석 전문가")
    assert card == dataset.with_name("reasoning.card.md")
    text = card.read_text(encoding="utf-8")
    assert "- Model: gpt-4o-mini-2024-07-18" in text and "- Prompt version: kote-reasoning-v1" in text
    assert "- Cost: $0.0123" in text and "감정 분석 전문가" in text
    assert (
        write_generation_card({"dry_run": True}) is None and write_generation_card({"output": None}) is None
    )
