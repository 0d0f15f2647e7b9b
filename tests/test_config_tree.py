"""The resolved config printed at job start: a tree, secrets redacted, rank 0 only."""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from emoreason.config_tree import PrintConfigTree, plain_config, render_tree

CFG = OmegaConf.create(
    {
        "seed": 3,
        "optim": {"lr": "${lr}"},
        "lr": 0.001,
        "logger": {"wandb": {"project": "p", "api_key": "sk-secret"}},
        "hydra": {"run": {"dir": "x"}},
    }
)


def test_tree_has_a_branch_per_group_resolved_without_secrets_or_hydra():
    text = render_tree(plain_config(CFG))
    lines = text.splitlines()
    assert lines[0] == "config"
    assert "├── seed: 3" in lines and "├── optim" in lines and "│   └── lr: 0.001" in lines
    assert "sk-secret" not in text and "api_key: <redacted>" in text
    assert "hydra" not in text


def test_unresolvable_values_are_shown_as_written():
    cfg = OmegaConf.create({"paths": {"kote_dir": "${oc.env:EMOREASON_TEST_UNSET_VARIABLE}"}})
    assert "${oc.env:EMOREASON_TEST_UNSET_VARIABLE}" in render_tree(plain_config(cfg))


def test_only_rank_zero_prints(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="emoreason.config_tree")
    monkeypatch.setenv("LOCAL_RANK", "1")
    PrintConfigTree().on_job_start(config=CFG)
    assert not caplog.records
    monkeypatch.setenv("LOCAL_RANK", "0")
    PrintConfigTree().on_job_start(config=CFG)
    assert "├── seed: 3" in caplog.records[0].getMessage()
