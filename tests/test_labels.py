import pytest
import torch

from emoreason.labels import (
    LABEL_TO_ID,
    LABELS,
    NONE_LABEL,
    NUM_LABELS,
    ids_from_multi_hot,
    multi_hot,
    parse_labels,
    render_labels,
)


def test_label_table_matches_kote_order():
    assert NUM_LABELS == 44
    assert LABELS[0] == "불평/불만" and LABELS[24] == "없음" and LABELS[43] == "안심/신뢰"
    assert len(set(LABELS)) == 44
    assert all("," not in name for name in LABELS)  # the separator never occurs inside a name


@pytest.mark.parametrize("label_id", range(NUM_LABELS))
def test_render_parse_round_trip_every_label(label_id):
    ids, ok = parse_labels(render_labels([label_id]))
    assert ok and ids == [label_id]


def test_render_is_canonical_and_parse_inverts_it():
    assert render_labels([43, 0, 5, 0]) == "불평/불만, 슬픔, 안심/신뢰"
    assert parse_labels("불평/불만, 슬픔, 안심/신뢰") == ([0, 5, 43], True)
    assert render_labels([]) == NONE_LABEL
    assert parse_labels(render_labels(range(NUM_LABELS))) == (list(range(NUM_LABELS)), True)


@pytest.mark.parametrize(
    "junk",
    ["", "   ", "행복함", "기쁨, 화남", "슬픔 기쁨", "the comment is angry", ",,,"],
)
def test_junk_is_flagged_unparseable(junk):
    _, ok = parse_labels(junk)
    assert not ok


def test_parse_tolerates_wrapping_but_not_near_misses():
    assert parse_labels(' "기쁨" ,[슬픔]\n흐뭇함(귀여움/예쁨) ') == (
        sorted([LABEL_TO_ID["기쁨"], LABEL_TO_ID["슬픔"], LABEL_TO_ID["흐뭇함(귀여움/예쁨)"]]),
        True,
    )
    ids, ok = parse_labels("기쁨, 슬픔이")
    assert ids == [LABEL_TO_ID["기쁨"]] and not ok


def test_multi_hot_round_trip():
    vec = multi_hot([3, 1, 3])
    assert vec.shape == (44,) and vec.dtype == torch.float32 and vec.sum() == 2
    assert ids_from_multi_hot(vec) == [1, 3]
