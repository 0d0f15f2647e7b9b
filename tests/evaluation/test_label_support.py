"""Labels without a gold row: reported as such, beside a macro-F1 over the labels a split can test."""

from __future__ import annotations

import logging

import pytest
import torch

from emoreason.evaluation.outputs import per_label_markdown
from emoreason.evaluation.scoring import ScoredSplit, threshold_and_reports
from emoreason.labels import LABELS
from emoreason.training.metrics import score_metrics


def scores_and_targets(rows: int, supported: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random scores; gold rows only for the first ``supported`` labels (each has at least one)."""
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(rows, len(LABELS), generator=generator)
    targets = torch.zeros(rows, len(LABELS), dtype=torch.long)
    targets[:, :supported] = (torch.rand(rows, supported, generator=generator) > 0.5).long()
    targets[0, :supported] = 1
    return scores, targets


def test_macro_f1_over_supported_labels_leaves_the_others_out():
    scores, targets = scores_and_targets(10, 33)
    figures = score_metrics(scores, targets, 0.3)
    per_label = list(figures["per_label_f1"].values())
    assert figures["macro_f1_supported"] == pytest.approx(sum(per_label[:33]) / 33, abs=1e-6)
    assert figures["macro_f1"] == pytest.approx(sum(per_label) / 44, abs=1e-6)
    assert per_label[33:] == [0.0] * 11  # what macro_f1 counts for a label it cannot test


def test_every_label_supported_gives_equal_figures_and_no_warning(caplog):
    scores, targets = scores_and_targets(50, 44)
    with caplog.at_level(logging.WARNING, logger="emoreason"):
        report = threshold_and_reports(None, ScoredSplit(scores, targets), 0.3)
    tuned = report.test.tuned
    assert tuned.macro_f1_supported == pytest.approx(tuned.macro_f1, abs=1e-6)
    assert report.test.labels_without_support == [] and not caplog.records
    assert "no gold row" not in per_label_markdown(report)


def test_unsupported_labels_are_named_in_the_split_the_warning_and_the_table(caplog):
    scores, targets = scores_and_targets(10, 33)
    with caplog.at_level(logging.WARNING, logger="emoreason"):
        split = ScoredSplit(scores, targets)
        report = threshold_and_reports(split, split)
    for section in (report.val, report.test):
        assert section.labels_without_support == list(LABELS[33:])
        assert [section.support[label] for label in LABELS[33:]] == [0] * 11
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["val", "test"]
    table = per_label_markdown(report)
    assert f"11 of 44 labels have no gold row here ({', '.join(LABELS[33:])})" in table
    assert table.count("no support | no support") == 11
