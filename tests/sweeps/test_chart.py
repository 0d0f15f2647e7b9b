"""fig3's floor lines: every floor drawn, coinciding ones sharing one line and one label."""

from emoreason.sweeps.chart import floor_lines


def floors(**means: float | None) -> dict:
    return {"floors": {"floors": {name: {"test_macro_f1": {"mean": m}} for name, m in means.items()}}}


def test_every_floor_gets_a_line_and_coinciding_floors_share_one():
    lines = floor_lines(floors(tfidf_logreg=0.406, label_prior=0.292, every_label=0.2921), "test_macro_f1")
    assert [(value, titles) for value, titles, _ in lines] == [
        (0.406, ["TF-IDF + LR floor"]),
        (0.292, ["label-prior floor", "every-label floor"]),
    ]
    apart = floor_lines(floors(label_prior=0.085, every_label=0.292, tfidf_logreg=None), "test_macro_f1")
    assert [titles for _, titles, _ in apart] == [["label-prior floor"], ["every-label floor"]]
