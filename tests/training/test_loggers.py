"""W&B run identity from Hydra overrides, and the per-label and sample-prediction tables."""

import torch

from emoreason.data.kote import KoteRow
from emoreason.evaluation.records import prediction_records
from emoreason.labels import LABELS
from emoreason.training.loggers import per_label_table, sample_predictions_table, wandb_run_identity
from tests.support.sweeps import EXCLUDE_KEYS, fake_metrics


def as_json(records):
    """The records as train passes them to its loggers (the training layer reads plain dicts)."""
    return [r.to_json() for r in records]


OVERRIDES = ["+sweep=tiny_ablation", "seed=1", "experiment=tiny_polyglot_reasoning", "paths.kote_dir=/data"]


def test_a_sweep_job_is_grouped_by_sweep_typed_by_its_cell_and_named_by_its_overrides():
    identity = wandb_run_identity(OVERRIDES, EXCLUDE_KEYS, "multirun/2026-11-28/15-02-11")
    assert identity == {
        "group": "2026-11-28/15-02-11",
        "job_type": "experiment=tiny_polyglot_reasoning",
        "name": "experiment=tiny_polyglot_reasoning,seed=1",
        "tags": ["experiment=tiny_polyglot_reasoning", "seed=1"],
    }
    other_seed = wandb_run_identity([*OVERRIDES[:1], "seed=2", *OVERRIDES[2:]], EXCLUDE_KEYS, "x/2026/a")
    assert other_seed["job_type"] == identity["job_type"] and other_seed["name"] != identity["name"]


def test_a_single_run_has_no_group_and_long_values_are_cut_but_stay_distinct():
    assert wandb_run_identity([], EXCLUDE_KEYS, None) == {
        "group": None,
        "job_type": "train",
        "name": None,
        "tags": [],
    }
    long_a, long_b = "model.config.hidden_size=" + "1" * 60, "model.config.hidden_size=" + "1" * 59 + "2"
    a, b = (wandb_run_identity([line], EXCLUDE_KEYS, None) for line in (long_a, long_b))
    assert len(a["job_type"]) == len(a["tags"][0]) == 64 and a["job_type"] != b["job_type"]


def test_per_label_table_has_every_label_at_both_thresholds():
    columns, data = per_label_table(fake_metrics(0, 0.4))
    assert columns == ["label", "f1", "f1@0.5"]
    assert [row[0] for row in data] == list(LABELS) and data[0][1:] == [0.4, 0.2]


def test_sample_predictions_show_labels_above_the_threshold_and_the_rows_reasoning():
    rows = [KoteRow(str(i), f"comment {i}", (0, i % 44), "why" if i % 2 else None) for i in range(10)]
    scores = torch.zeros(10, 44)
    scores[:, 3], scores[:, 5] = 0.9, 0.3  # label 5 sits exactly at the threshold: not predicted
    columns, data = sample_predictions_table(as_json(prediction_records(rows, scores, 0.3)), rows, limit=4)
    assert columns == ["id", "text", "gold", "predicted", "reasoning", "generated"]
    assert [row[0] for row in data] == ["0", "2", "4", "6"]  # spread over the split, at most `limit`
    assert data[1] == ["2", "comment 2", f"{LABELS[0]}, {LABELS[2]}", LABELS[3], "", ""]
    _, odd = sample_predictions_table(as_json(prediction_records(rows[1:2], scores[1:2], 0.3)), rows[1:2])
    assert odd[0][4] == "why"


def test_sample_predictions_show_what_a_generative_method_wrote():
    rows = [KoteRow("a", "comment", (0,))]
    records = prediction_records(rows, torch.zeros(1, 44), 0.5, generated=["이유: ...\n감정: 불평/불만"])
    _, data = sample_predictions_table(as_json(records), rows)
    assert data[0][5] == "이유: ...\n감정: 불평/불만"
