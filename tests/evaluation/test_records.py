"""metrics.json and test_predictions.jsonl through one module: JSON shape kept, versioned, old files read."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from emoreason.cli import is_user_error
from emoreason.data.kote import KoteRow
from emoreason.evaluation.records import (
    SCHEMA_VERSION,
    RecordError,
    RunMetrics,
    prediction_records,
    read_metrics,
    write_metrics,
    write_predictions,
)
from emoreason.evaluation.scoring import ScoredSplit, threshold_and_reports
from emoreason.labels import LABELS

FIGURES = {
    "macro_f1": 0.41,
    "micro_f1": 0.52,
    "weighted_f1": 0.47,
    "per_label_f1": dict.fromkeys(LABELS, 0.4),
}
VERSION_0_TRAIN = {
    # As train.py wrote it before the schema had a version (and before at_0.3, macro_auroc and support).
    "model": "beomi/KcELECTRA-base-v2022",
    "method": "classifier",
    "seed": 2,
    "split_scheme": "official",
    "data_sizes": {"train": 40000, "val": 5000, "test": 5000},
    "data_sources": {},
    "best_checkpoint": "outputs/x/checkpoints/epoch=1.ckpt",
    "global_step": 1250,
    "tags": [],
    "threshold": 0.31,
    "val": {"rows": 5000, "tuned": FIGURES, "at_0.5": FIGURES},
    "test": {"rows": 5000, "tuned": FIGURES, "at_0.5": FIGURES, "unparseable_rate": 0.0},
    "wall_time_s": 812.5,
}


def scored(n: int = 30, seed: int = 0) -> ScoredSplit:
    gen = torch.Generator().manual_seed(seed)
    targets = (torch.rand(n, 44, generator=gen) < 0.2).int()
    return ScoredSplit(
        torch.rand(n, 44, generator=gen) * 0.6 + targets * 0.4, targets, {"unparseable_rate": 0.1}
    )


def test_a_written_metrics_file_keeps_its_keys_and_nesting_and_adds_the_version(tmp_path):
    results = threshold_and_reports(scored(seed=1), scored(seed=2))
    metrics = RunMetrics(
        "tiny", "classifier", 0, "official", results, {"checkpoint": "a.ckpt", "wall_time_s": 3.0}
    )
    on_disk = json.loads(write_metrics(tmp_path, metrics).read_text(encoding="utf-8"))
    assert list(on_disk) == [
        "schema_version",
        "model",
        "method",
        "seed",
        "split_scheme",
        "checkpoint",
        "threshold",
        "threshold_source",
        "val",
        "test",
        "wall_time_s",
    ]
    assert on_disk["schema_version"] == SCHEMA_VERSION == 1
    assert list(on_disk["test"]) == [
        "rows",
        "support",
        "labels_without_support",
        "tuned",
        "at_0.5",
        "at_0.3",
        "macro_auroc",
        "unparseable_rate",
    ]
    assert set(on_disk["test"]["at_0.3"]) == {*FIGURES, "macro_f1_supported"}
    assert read_metrics(tmp_path / "metrics.json") == metrics


def test_a_metrics_file_without_a_version_is_read_as_version_0(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(VERSION_0_TRAIN), encoding="utf-8")
    metrics = read_metrics(path)
    assert metrics.schema_version == 0 and metrics.seed == 2
    assert metrics.results is not None and metrics.results.threshold == 0.31
    assert metrics.results.threshold_source is None  # unknown: left out again when written back
    assert metrics.results.test is not None and metrics.results.test.tuned.macro_f1 == 0.41
    assert metrics.results.test.at_03 is None and metrics.results.test.diagnostics == {
        "unparseable_rate": 0.0
    }
    assert metrics.run["global_step"] == 1250 and metrics.run["wall_time_s"] == 812.5
    again = metrics.to_json()
    assert {k: v for k, v in again.items() if k != "schema_version"} | {
        "test": VERSION_0_TRAIN["test"],
        "val": VERSION_0_TRAIN["val"],
    } == VERSION_0_TRAIN


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({**VERSION_0_TRAIN, "schema_version": SCHEMA_VERSION + 1}, "schema_version 2 is newer"),
        ({k: v for k, v in VERSION_0_TRAIN.items() if k != "model"}, "missing key 'model'"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_an_unreadable_metrics_file_names_itself_and_the_problem(tmp_path, payload, message):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(
        RecordError, match=rf"metrics\.json: {message}.*delete it to run the job again"
    ) as caught:
        read_metrics(path)
    assert is_user_error(caught.value)  # one line and exit status 2 at the command line (report.py)


def test_prediction_records_are_written_in_the_documented_shape(tmp_path):
    rows = [KoteRow("7", "좋네", (3,)), KoteRow("8", "별로", ())]
    scores = torch.zeros(2, 44)
    scores[0, 3] = 0.91234
    plain, generative = (
        prediction_records(rows, scores, 0.5, generated)
        for generated in (None, ["이유: ...\n감정: 기쁨", "감정: 없음"])
    )
    lines = write_predictions(tmp_path, plain).read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert list(first) == ["id", "text", "gold", "predicted", "scores"]
    assert first["gold"] == first["predicted"] == [LABELS[3]] and first["scores"][LABELS[3]] == 0.9123
    assert list(generative[0].to_json()) == ["id", "text", "gold", "predicted", "generated", "scores"]


def test_a_scored_split_is_a_plain_record_not_a_tuple():
    split = scored()
    assert not isinstance(split, tuple) and dataclasses.is_dataclass(split)
    assert split.diagnostics == {"unparseable_rate": 0.1} and split.generated is None
