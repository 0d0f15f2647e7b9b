"""Control arms (data.source.reasoning_control): shuffled reasoning, label-name templates; training only."""

from collections import Counter

import pytest

from emoreason.data.controls import TEMPLATE, shuffled_reasoning
from emoreason.data.kote import KoteRow
from emoreason.data.sources import ReasoningJoinError, ReasoningSource
from emoreason.labels import label_names
from tests.support.project import shared_reasoning_path

pytestmark = pytest.mark.shared_data


def load(kote_dir, control: str, seed: int = 0):
    return ReasoningSource(
        root=str(kote_dir),
        split_scheme="val_holdout",
        seed=seed,
        download=False,
        reasoning_path=str(shared_reasoning_path()),
        missing_reasoning="drop",
        reasoning_control=control,
    ).load()


@pytest.fixture(scope="module")
def original(kote_dir):
    return load(kote_dir, "none")


def test_shuffled_keeps_the_multiset_and_moves_every_text_off_its_comment(kote_dir, original):
    shuffled = load(kote_dir, "shuffled")
    assert [r.id for r in shuffled.train] == [r.id for r in original.train]
    assert Counter(r.reasoning for r in shuffled.train) == Counter(r.reasoning for r in original.train)
    assert all(s.reasoning != o.reasoning for s, o in zip(shuffled.train, original.train, strict=True))
    assert shuffled.val == original.val and shuffled.test == original.test  # evaluation rows untouched
    assert shuffled.sources["reasoning_control"] == "shuffled"
    again, other_seed = load(kote_dir, "shuffled"), load(kote_dir, "shuffled", seed=1)
    assert again.train == shuffled.train
    assert [r.reasoning for r in other_seed.train] != [r.reasoning for r in shuffled.train]


def test_template_holds_only_the_gold_label_names(kote_dir, original):
    template = load(kote_dir, "template")
    prefix, suffix = TEMPLATE.split("{labels}")
    for row in template.train:
        assert row.reasoning.startswith(prefix) and row.reasoning.endswith(suffix)
        names = row.reasoning.removeprefix(prefix).removesuffix(suffix).split(", ")
        assert names == label_names(row.labels)
    assert template.val == original.val and template.test == original.test
    assert [r.id for r in template.train] == [r.id for r in original.train]


def test_a_two_row_derangement_swaps_and_one_row_cannot_be_deranged():
    rows = [KoteRow("1", "a", (0,), "첫째 이유"), KoteRow("2", "b", (1,), "둘째 이유")]
    assert [r.reasoning for r in shuffled_reasoning(rows, seed=3)] == ["둘째 이유", "첫째 이유"]
    with pytest.raises(ValueError, match="reasoning_control=shuffled needs 2 or more training rows"):
        shuffled_reasoning(rows[:1], seed=0)


def test_an_unknown_control_is_an_error_naming_the_key(kote_dir):
    with pytest.raises(ReasoningJoinError, match="reasoning_control must be one of none, shuffled, template"):
        load(kote_dir, "reversed")
