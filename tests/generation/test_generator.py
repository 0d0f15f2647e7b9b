"""The generator contract: a backend written against ``Generator`` in this file, with its YAML in a temporary
folder, runs through ``generate()`` by ``_target_`` alone, which is what docs/generation.md promises a new
backend (one code file + one YAML)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from emoreason.config import ConfigError
from emoreason.data.kote import KoteRow
from emoreason.data.reasoning import ReasoningRecord, read_reasoning_jsonl
from emoreason.data.reasoning_stats import write_generation_card
from emoreason.generation.chatgpt import ChatGPTGenerator
from emoreason.generation.config import GenerateConfig, load_config
from emoreason.generation.errors import GenerationError
from emoreason.generation.generator import Generator, Outcome
from emoreason.generation.prompt import Message, PromptTemplate
from emoreason.generation.run import generate, sample_rows
from emoreason.labels import label_names
from tests.support.fake_openai import FakeOpenAI
from tests.support.project import CONF_DIR


@dataclass
class EchoGenerator:
    """A backend that answers every comment with its label names (what a local model would be wired as)."""

    name: str = "echo"
    notes: str = "notes.txt"
    sentence: str = "The comment shows {labels}."

    def check(self, settings: GenerateConfig) -> None:
        if "{labels}" not in self.sentence:
            raise ConfigError(f"generator.sentence must use {{labels}}, got {self.sentence!r}")

    def inputs(self, settings: GenerateConfig) -> dict[str, str]:
        return {"generator.notes": self.notes}

    def generate(self, rows: Sequence[KoteRow], settings: GenerateConfig, prompt: PromptTemplate) -> Outcome:
        if settings.dry_run:
            return Outcome({"items": len(rows), "calls_needed": len(rows)}, complete=True)
        records = [
            ReasoningRecord(
                id=row.id,
                text=row.text,
                labels=tuple(label_names(row.labels)),
                reasoning=self.sentence.format(labels=", ".join(label_names(row.labels))),
                model="echo",
                prompt_version=prompt.version,
            )
            for row in rows
        ]
        return Outcome({"items": len(rows), "completed": len(records)}, complete=True, records=records)


@dataclass
class ThinkingSwitchGenerator(ChatGPTGenerator):
    """A vLLM server whose chat template must be told not to think: another request, in one field and one
    method; the client, cache, retries, batches and prices are ChatGPTGenerator's."""

    name: str = "vllm"
    enable_thinking: bool = False

    def request_body(self, messages: list[Message]) -> dict[str, Any]:
        switch = {"chat_template_kwargs": {"enable_thinking": self.enable_thinking}}
        return super().request_body(messages) | switch


def _target(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


TARGET = _target(EchoGenerator)


@pytest.fixture
def echo_cfg(tmp_path: Path, tiny_kote_dir: Path, no_network: None):
    """``generator=echo`` from ``<tmp>/conf/generator/echo.yaml``, found through ``hydra.searchpath``."""
    extra = tmp_path / "conf"
    (extra / "generator").mkdir(parents=True)
    notes = tmp_path / "notes.txt"
    notes.write_text("kept\n", encoding="utf-8")
    (extra / "generator" / "echo.yaml").write_text(
        f"_target_: {TARGET}\nname: echo\nnotes: {notes}\nsentence: 'The comment shows {{labels}}.'\n",
        encoding="utf-8",
    )

    def _make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(
                config_name="generate",
                overrides=[
                    f"hydra.searchpath=[file://{extra}]",
                    "generator=echo",
                    f"data.source.root={tiny_kote_dir}",
                    "data.source.split_scheme=val_holdout",
                    "data.source.holdout_size=10",
                    "data.source.download=false",
                    "data.source.verify_checksums=false",
                    f"output={tmp_path / 'out' / 'reasoning.jsonl'}",
                    f"summary_path={tmp_path / 'summary.json'}",
                    f"cache_path={tmp_path / 'cache.jsonl'}",
                    "progress=false",
                    *overrides,
                ],
            )

    return _make


def test_a_backend_selected_by_target_runs_through_generate(echo_cfg, tmp_path: Path) -> None:
    settings = load_config(echo_cfg("n=12"))
    assert isinstance(settings.generator, EchoGenerator) and isinstance(settings.generator, Generator)
    rows = sample_rows(settings)

    planned = generate(echo_cfg("n=12", "dry_run=true"))
    assert planned == {**planned, "generator": "echo", "dry_run": True, "calls_needed": 12, "complete": True}
    assert "output" not in planned and not (tmp_path / "out" / "reasoning.jsonl").exists()

    summary = generate(echo_cfg("n=12"))
    assert summary["generator"] == "echo" and summary["complete"] and summary["completed"] == 12
    records = read_reasoning_jsonl(summary["output"])
    assert [r.id for r in records] == [row.id for row in rows]
    assert records[0].reasoning == f"The comment shows {', '.join(label_names(rows[0].labels))}."
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["generator"] == "echo"
    gold = sum(len(row.labels) for row in rows)  # the echo backend names every gold label: all leak
    dataset = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["dataset_stats"]
    assert dataset == summary["dataset_stats"] and dataset["records"] == 12
    assert dataset["leaked_labels"] == dataset["gold_labels"] == gold and dataset["leak_rate"] == 1.0
    assert dataset["records_with_leak"] == 12
    lengths = sorted(len(r.reasoning) for r in records)
    assert dataset["length_chars"]["min"] == lengths[0] and dataset["length_chars"]["max"] == lengths[-1]
    assert dataset["refusals"] == dataset["truncated"] == 0
    card = tmp_path / "out" / "reasoning.card.md"
    written_from_the_run = card.read_text(encoding="utf-8")
    prompt = PromptTemplate.from_config(settings.prompt)
    write_generation_card(summary, f"System:\n{prompt.system}\n\nUser:\n{prompt.user}")  # reads it back
    assert written_from_the_run == card.read_text(encoding="utf-8")  # the run's records are the file's


def test_the_backends_checks_and_inputs_are_honoured(echo_cfg, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^generator\.sentence must use \{labels\}"):
        generate(echo_cfg("generator.sentence=plain"))
    with pytest.raises(ConfigError, match=r"^output: .* is generator\.notes; writing it would destroy"):
        generate(echo_cfg(f"output={tmp_path / 'notes.txt'}"))
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "kept\n"


def test_a_backends_keys_are_typed_by_its_fields(echo_cfg) -> None:
    cfg = echo_cfg()
    OmegaConf.set_struct(cfg, False)
    cfg.generator.sentense = "x"
    with pytest.raises(ConfigError, match=r"^generator\.sentense: Key 'sentense' not in 'EchoGenerator'"):
        load_config(cfg)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("collections.OrderedDict", r"^generator\._target_: OrderedDict is not a generator"),
        ("emoreason.generation.nowhere.Gen", r"^generator\._target_: cannot import"),
    ],
)
def test_a_target_that_is_no_generator_is_an_error(echo_cfg, target: str, message: str) -> None:
    cfg = echo_cfg()
    OmegaConf.set_struct(cfg, False)
    cfg.generator = {"_target_": target}
    with pytest.raises(ConfigError, match=message):
        load_config(cfg)


def test_a_generator_config_without_target_still_means_its_built_in_name(echo_cfg) -> None:
    """A copy of an old ``conf/generator/chatgpt.yaml`` (no ``_target_``) keeps working."""
    cfg = echo_cfg()
    OmegaConf.set_struct(cfg, False)
    cfg.generator = {"name": "chatgpt", "model": "my-model", "concurrency": 3}
    generator = load_config(cfg).generator
    assert type(generator) is ChatGPTGenerator and (generator.model, generator.concurrency) == ("my-model", 3)


@pytest.mark.parametrize("mode", ["online", "batch"])
def test_a_chat_backend_that_needs_another_request_is_one_class_and_one_yaml(
    mode: str, make_cfg, fake: FakeOpenAI, api_key: str, tmp_path: Path
) -> None:
    extra = tmp_path / "conf" / "generator"
    extra.mkdir(parents=True)
    (extra / "vllm.yaml").write_text(
        f"defaults:\n  - chatgpt\n  - _self_\n_target_: {_target(ThinkingSwitchGenerator)}\nname: vllm\n"
        "enable_thinking: false\n",
        encoding="utf-8",
    )
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    summary = generate(make_cfg(searchpath, "generator=vllm", f"generator.mode={mode}", "n=6"))
    assert summary["generator"] == "vllm" and summary["complete"] and summary["generated"] == 6
    assert len(fake.chats) == 6 and all(c.via_batch == (mode == "batch") for c in fake.chats)
    assert all(c.request["chat_template_kwargs"] == {"enable_thinking": False} for c in fake.chats)
    assert all(c.request["temperature"] == 0.7 and c.request["max_tokens"] == 512 for c in fake.chats)


def test_a_backend_returning_label_ids_stops_naming_it_and_writes_nothing(echo_cfg, tmp_path, monkeypatch):
    echo = EchoGenerator.generate

    def with_label_ids(self, rows, settings, prompt):  # the mistake a KoteRow invites: its labels are ids
        outcome = echo(self, rows, settings, prompt)
        records = [
            dataclasses.replace(r, labels=row.labels) for r, row in zip(outcome.records, rows, strict=True)
        ]
        return dataclasses.replace(outcome, records=records)

    monkeypatch.setattr(EchoGenerator, "generate", with_label_ids)
    with pytest.raises(
        GenerationError, match=r"^generator echo returned a record .*record 0 \(id .*label names"
    ):
        generate(echo_cfg("n=12"))
    assert not (tmp_path / "out" / "reasoning.jsonl").exists()
