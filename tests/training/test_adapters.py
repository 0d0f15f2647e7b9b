"""<run>/adapter/: PEFT's own loader takes it, and evaluate.py rebuilds the same predictions from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from peft import PeftModel

from emoreason.evaluate import evaluate
from emoreason.models.lora import with_lora
from emoreason.models.methods.classifier import ClassifierMethod
from emoreason.models.methods.generative import LabelOnlyMethod
from emoreason.models.tokenizers import train_tokenizer
from emoreason.train import train
from emoreason.training.adapters import export_adapter, read_adapter_folder
from emoreason.training.module import EmotionModule
from emoreason.training.optimizers import adamw, linear_warmup
from tests.support.project import CONF_DIR, compose_small_run, lora_settings
from tests.support.reasoning import tiny_backbone

TEXTS = ["정말 고맙습니다", "어이가 없네 진짜", "ㅋㅋㅋ 웃기다", "화가 난다 정말", "슬프고 아프다"] * 4
EXTRA_STATE = {
    "config": {
        "model": {"_target_": "emoreason.models.backbones.EmbeddedBackbone", "init_seed": 0},
        "lora": {
            "_target_": "emoreason.models.lora.LoraSettings",
            "r": 4,
            "alpha": 8,
            "dropout": 0.0,
            "target_modules": lora_settings().target_modules,
        },
    },
    "tokenizer": {"tokenizer_json": "{}"},
}


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, "bpe", 300, None)


def _module(method, tokenizer, seed: int | None = None) -> EmotionModule:
    settings = lora_settings(r=4, alpha=8, dropout=0.0)
    module = EmotionModule(
        method.build_model(with_lora(tiny_backbone(), settings), tokenizer), method, adamw, linear_warmup
    )
    if seed is not None:  # stand-in for training: every trainable weight moved
        torch.manual_seed(seed)
        with torch.no_grad():
            for param in module.parameters():
                if param.requires_grad:
                    param.normal_(0, 0.3)
    return module.eval()


def _batch(tokenizer):
    encoded = tokenizer(TEXTS[:5], padding=True, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


@pytest.mark.parametrize("method", [LabelOnlyMethod(), ClassifierMethod()], ids=["generative", "classifier"])
def test_the_folder_round_trips_and_peft_loads_it(method, tokenizer, tmp_path):
    trained = _module(method, tokenizer, seed=1)
    assert export_adapter(trained.model, trained.state_dict(), EXTRA_STATE, tmp_path / "adapter")
    folder = tmp_path / "adapter"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "emoreason.json",
        "head.safetensors",
    ]
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    assert (
        config["peft_type"] == "LORA"
        and config["r"] == 4
        and set(config["target_modules"]) == set(lora_settings().target_modules)
    )

    fresh = _module(method, tokenizer)
    fresh.load_state_dict(read_adapter_folder(folder)["state_dict"])  # strict: every trained weight is there
    ids, mask = _batch(tokenizer)
    with torch.no_grad():
        assert torch.equal(fresh.model(ids, mask), trained.model(ids, mask))

    # PEFT's own loader on a freshly built base (the classifier's adapters sit in the base model only).
    def base():
        network = tiny_backbone().load_network(tokenizer)
        return network if isinstance(method, LabelOnlyMethod) else network.base_model

    peft = PeftModel.from_pretrained(base(), folder).eval()  # injects into the model it is given
    ours = trained.model.network if isinstance(method, LabelOnlyMethod) else trained.model.decoder
    with torch.no_grad():
        expected = ours(input_ids=ids, attention_mask=mask)
        got = peft(input_ids=ids, attention_mask=mask)
        plain = base()(input_ids=ids, attention_mask=mask)
    key = "logits" if isinstance(method, LabelOnlyMethod) else "last_hidden_state"
    assert torch.allclose(got[key], expected[key], atol=1e-6)
    assert not torch.allclose(plain[key], expected[key])  # the adapters matter


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_lora_run_writes_the_folder_and_evaluate_reads_it(tmp_path, small_kote_dir, cache_dir):
    run = tmp_path / "run"
    cfg = compose_small_run(
        run,
        small_kote_dir,
        cache_dir,
        "trainer.max_epochs=1",
        "data.source.max_train_rows=64",
        "model=tiny_neox",
        "model.vocab_size=1000",
        "lora=default",
        "test=false",
    )
    best = train(cfg)["best_checkpoint"]
    assert (run / "adapter" / "adapter_model.safetensors").exists()

    def scored(ckpt_path: str | Path) -> dict:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            eval_cfg = compose(
                config_name="evaluate",
                overrides=[
                    f"paths.output_dir={tmp_path / 'eval'}",
                    f"paths.kote_dir={small_kote_dir}",
                    f"paths.cache_dir={cache_dir}",
                    "threshold=0.5",
                    f"ckpt_path={ckpt_path}",
                ],
            )
        return evaluate(eval_cfg)

    assert scored(run / "adapter")["test"] == scored(best)["test"]
