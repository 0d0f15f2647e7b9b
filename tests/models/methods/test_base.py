"""The method contract: every ``conf/method`` file is a :class:`Method`, and a new method is one class + one
YAML, found by Hydra from the folder and run end to end by ``train.py`` with nothing else edited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emoreason.components import build_parts
from emoreason.config import ConfigError
from emoreason.data.kote import KoteRow
from emoreason.labels import NUM_LABELS, multi_hot
from emoreason.models.backbones import NetworkSource
from emoreason.models.methods import method_targets
from emoreason.models.methods.base import Batch, Columns, Method
from emoreason.train import train
from tests.support.project import CONF_DIR, SMALL_RUN

METHOD_FILES = sorted((CONF_DIR / "method").glob("*.yaml"))


@pytest.mark.parametrize("path", METHOD_FILES, ids=lambda p: p.stem)
def test_every_method_config_is_a_method_named_as_its_file(path: Path):
    method = instantiate(OmegaConf.load(path))
    assert isinstance(method, Method)
    assert method.name == path.stem  # method=<name> on the command line is the name in metrics.json
    assert method.padding_side in ("left", "right")
    assert method.eval_loss == (method.diagnostic_names == ())


def test_the_method_classes_found_in_the_folder_are_those_the_configs_name():
    named = {yaml.safe_load(path.read_text(encoding="utf-8"))["_target_"] for path in METHOD_FILES}
    assert method_targets() == named


@dataclass
class MeanPoolMethod(Method):
    """A method written against the contract alone: mean-pooled hidden states, a linear head, BCE."""

    name = "mean_pool"

    def build_model(self, backbone: NetworkSource, tokenizer: PreTrainedTokenizerBase) -> nn.Module:
        return MeanPool(backbone.load_network(tokenizer))

    def pad_values(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
        return {"input_ids": tokenizer.pad_token_id, "attention_mask": 0}

    def encode(
        self, rows: Sequence[KoteRow], tokenizer: PreTrainedTokenizerBase, max_length: int, *, train: bool
    ) -> Columns:
        encoded = tokenizer([r.text for r in rows], truncation=True, max_length=max_length)
        return {**encoded, "targets": [multi_hot(r.labels) for r in rows]}

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = model(batch["input_ids"], batch["attention_mask"])
        return F.binary_cross_entropy_with_logits(logits, batch["targets"]), {}

    def scores(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return torch.sigmoid(model(batch["input_ids"], batch["attention_mask"]))


class MeanPool(nn.Module):
    def __init__(self, network: PreTrainedModel) -> None:
        super().__init__()
        self.network = network
        self.head = nn.Linear(network.config.hidden_size, NUM_LABELS)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.network(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).float()
        return self.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))


@pytest.fixture
def new_method_conf(tmp_path: Path) -> Path:
    """The one YAML a new method adds, in a ``method/`` folder on Hydra's search path."""
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "method" / "mean_pool.yaml").write_text(
        f"_target_: {__name__}.{MeanPoolMethod.__qualname__}\n", encoding="utf-8"
    )
    return tmp_path / "conf"


@pytest.mark.shared_data
def test_a_new_method_is_one_class_and_one_yaml(compose_train, small_kote_dir, new_method_conf, tmp_path):
    search_path = f"hydra.searchpath=[file://{new_method_conf}]"
    cfg = compose_train(
        *SMALL_RUN, f"paths.kote_dir={small_kote_dir}", "debug=fast_dev_run", search_path, "method=mean_pool"
    )
    parts = build_parts(cfg)
    assert isinstance(parts.method, MeanPoolMethod) and parts.datamodule.method is parts.method
    report = train(cfg)
    assert report["method"] == "mean_pool" and report["global_step"] == 1
    assert report["test"]["rows"] == 128 and len(report["test"]["tuned"]["per_label_f1"]) == NUM_LABELS
    cached = {p.name.split("-")[0] for p in (Path(cfg.paths.cache_dir) / "encoded").iterdir()}
    assert "mean_pool" in cached  # the encoding cache files it under the new method's name


def test_a_target_that_is_not_a_method_is_a_config_error(compose_train):
    wrong = "builtins.dict"  # instantiates, but is no method
    cfg = compose_train("method=classifier", f"method._target_={wrong}", "~method.dropout")
    with pytest.raises(ConfigError, match=rf"^method\._target_={wrong} is a dict, not a method"):
        build_parts(cfg)
