"""evaluate(cfg) reads what users have (BOM, cp949), needs only the checkpoint and its input, and says when a
small file cannot test every label."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from hydra import compose, initialize_config_dir

from emoreason.config import ConfigError
from emoreason.data.kote import read_kote_tsv
from emoreason.evaluate import evaluate
from emoreason.labels import LABELS
from tests.support.evaluation import with_stored_config
from tests.support.project import CONF_DIR, write_kote_tsv

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


@pytest.fixture
def run_evaluate(tmp_path, cache_dir):
    """evaluate() as evaluate.py composes it; ``kote_dir`` defaults to an empty folder (no KOTE files)."""
    empty = tmp_path / "no_kote"
    empty.mkdir()

    def _run(*overrides: str, kote_dir=empty):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                config_name="evaluate",
                overrides=[
                    f"paths.output_dir={tmp_path / 'out'}",
                    f"paths.cache_dir={cache_dir}",
                    f"paths.kote_dir={kote_dir}",
                    f"paths.reasoning_path={tmp_path / 'absent.jsonl'}",
                    *overrides,
                ],
            )
        return evaluate(cfg)

    return _run


# --- D: input not normalised -------------------------------------------------------------------------------


def test_a_byte_order_mark_does_not_change_a_comments_text_or_scores(tiny_checkpoint, tmp_path, run_evaluate):
    comment = "아 진짜 어이가 없네"
    plain, marked = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_text(f"{comment}\n정말 고맙습니다\n", encoding="utf-8")
    marked.write_text(f"{comment}\n정말 고맙습니다\n", encoding="utf-8-sig")
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    tags = [
        run_evaluate(f"ckpt_path={tiny_checkpoint}", f"input_file={path}", "threshold=0.3")["tagged"]
        for path in (plain, marked)
    ]
    assert [t["text"] for t in tags[1]] == [comment, "정말 고맙습니다"]
    assert tags[1] == tags[0]  # same scores, same top labels


def test_a_cp949_input_file_is_named_with_how_to_convert_it(tiny_checkpoint, tmp_path, run_evaluate):
    comments = tmp_path / "comments.txt"
    comments.write_bytes("아 진짜 어이가 없네\n".encode("cp949"))
    with pytest.raises(ConfigError, match=rf"{comments}: not UTF-8 .*iconv -f cp949 -t utf-8"):
        run_evaluate(f"ckpt_path={tiny_checkpoint}", f"input_file={comments}", "threshold=0.3")


def test_crlf_line_ends_are_not_part_of_a_comment(tiny_checkpoint, tmp_path, run_evaluate):
    comments = tmp_path / "windows.txt"
    comments.write_bytes("정말 고맙습니다\r\n\r\n어이가 없네\r\n".encode())
    tagged = run_evaluate(f"ckpt_path={tiny_checkpoint}", f"input_file={comments}", "threshold=0.3")["tagged"]
    assert [(t["id"], t["text"]) for t in tagged] == [("1", "정말 고맙습니다"), ("3", "어이가 없네")]


# --- E (in process): an empty comment ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["''", "'   '"])
def test_an_empty_text_is_a_config_error(tiny_checkpoint, run_evaluate, text):
    with pytest.raises(ConfigError, match="text is empty"):
        run_evaluate(f"ckpt_path={tiny_checkpoint}", f"text={text}", "threshold=0.3")


# --- F: evaluation needs only the checkpoint and its input -------------------------------------------------


def test_tagging_with_a_given_threshold_reads_no_kote_file(tiny_checkpoint, run_evaluate, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("evaluate tried to download KOTE")

    monkeypatch.setattr("urllib.request.urlopen", no_download)
    (tagged,) = run_evaluate(f"ckpt_path={tiny_checkpoint}", "text='아 진짜 어이가 없네'", "threshold=0.3")[
        "tagged"
    ]
    assert tagged["text"] == "아 진짜 어이가 없네" and len(tagged["scores"]) == 44
    assert set(tagged["labels"]) == {label for label, score in tagged["scores"].items() if score > 0.3}


def test_a_reasoning_run_scores_a_data_file_without_the_reasoning_dataset(
    tiny_checkpoint, tmp_path, small_kote_dir, run_evaluate
):
    """A run trained with data=kote_reasoning: inference never reads reasoning, so its absence is no error."""
    absent = tmp_path / "absent.jsonl"
    ckpt = with_stored_config(
        tiny_checkpoint,
        tmp_path / "reasoning_run.ckpt",
        _target_="emoreason.data.sources.ReasoningSource",
        reasoning_path=str(absent),
        missing_reasoning="drop",
    )
    rows = read_kote_tsv(small_kote_dir / "test.tsv")[:20]
    data_file = write_kote_tsv(
        tmp_path / "mine.tsv", [(r.id, r.text, ",".join(map(str, r.labels))) for r in rows]
    )
    given = run_evaluate(f"ckpt_path={ckpt}", f"data_file={data_file}", "threshold=0.3")
    assert given["test"]["rows"] == 20 and given["threshold_source"] == "given"
    tuned = run_evaluate(f"ckpt_path={ckpt}", f"data_file={data_file}", kote_dir=small_kote_dir)
    assert tuned["threshold_source"] == "tuned on val" and tuned["val"]["rows"] == 200
    assert not absent.exists()


def test_tuning_uses_the_split_scheme_the_run_resolved_and_never_downloads(
    tiny_checkpoint, tmp_path, small_kote_dir, run_evaluate, monkeypatch
):
    """``auto`` resolved to val_holdout at training (no train.tsv); online now, it must not turn official:
    tuning would download train.tsv and tune on all of val.tsv, whose other rows the model trained on."""
    stored = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)["emoreason"]
    assert stored["split_scheme"] == "val_holdout"
    ckpt = with_stored_config(tiny_checkpoint, tmp_path / "auto.ckpt", split_scheme="auto", download=True)

    def no_download(*args, **kwargs):
        raise AssertionError("evaluate tried to download KOTE")

    monkeypatch.setattr("urllib.request.urlopen", no_download)
    report = run_evaluate(f"ckpt_path={ckpt}", kote_dir=small_kote_dir)
    assert report["split_scheme"] == "val_holdout" and report["val"]["rows"] == 200


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        (("threshold=0.3",), "give data_file=<KOTE TSV> to score another file"),
        (("text=hello",), "give threshold=<value>"),
    ],
)
def test_missing_kote_files_say_which_option_needs_them(
    tiny_checkpoint, run_evaluate, overrides, hint, tmp_path
):
    with pytest.raises(ConfigError, match=r"KOTE val\.tsv not found") as caught:
        run_evaluate(f"ckpt_path={tiny_checkpoint}", *overrides)
    message = str(caught.value)
    assert hint in message and "train from val.tsv" not in message
    assert "threshold=null" in message or "test split" in message


# --- G: metrics on small files ----------------------------------------------------------------------------


def test_a_small_data_file_reports_labels_without_support(
    tiny_checkpoint, tmp_path, kote_dir, run_evaluate, caplog
):
    """test.tsv's first 10 rows leave 11 of the 44 labels without a gold row."""
    rows = read_kote_tsv(kote_dir / "test.tsv")[:10]
    data_file = write_kote_tsv(
        tmp_path / "ten.tsv", [(r.id, r.text, ",".join(map(str, r.labels))) for r in rows]
    )
    gold = {LABELS[i] for r in rows for i in r.labels}
    expected = [label for label in LABELS if label not in gold]
    assert len(expected) == 11
    with caplog.at_level(logging.WARNING, logger="emoreason"):
        report = run_evaluate(f"ckpt_path={tiny_checkpoint}", f"data_file={data_file}", "threshold=0.3")
    test = report["test"]
    assert test["labels_without_support"] == expected
    assert test["support"] == {label: sum(LABELS.index(label) in r.labels for r in rows) for label in LABELS}
    for figures in (test["tuned"], test["at_0.5"]):
        supported = [figures["per_label_f1"][label] for label in LABELS if label in gold]
        assert figures["macro_f1_supported"] == pytest.approx(sum(supported) / 33, abs=1e-6)
        assert figures["macro_f1"] == pytest.approx(figures["macro_f1_supported"] * 33 / 44, abs=1e-6)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["test"]["labels_without_support"] == expected
    (warning,) = [r.getMessage() for r in caplog.records if "no gold row" in r.getMessage()]
    assert warning.startswith("test: 11 of 44 labels have no gold row among its 10 rows")
    assert f"{test['tuned']['macro_f1']:.4f} counts them as 0" in warning
    table = (tmp_path / "out" / "per_label_f1.md").read_text(encoding="utf-8")
    assert "11 of 44 labels have no gold row here" in table
    assert f"| **macro_f1_supported** (33 labels) | {test['tuned']['macro_f1_supported']:.4f} |" in table
    for label in LABELS:
        (line,) = [line for line in table.splitlines() if line.startswith(f"| {label} |")]
        assert ("no support" in line) == (label in expected)
