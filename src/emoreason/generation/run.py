"""``generate(cfg)``: sample the seed comments, get their reasoning, write the dataset, report what it took.

Where the reasoning comes from is the :class:`~emoreason.generation.generator.Generator` that
``generator._target_`` names (an API, a file...); this module never asks which one it is. The dataset at
``output`` is rewritten, atomically, with every item that has reasoning so far; ``summary["complete"]`` says
whether that is all of them. Nothing is lost by stopping a run (Ctrl-C, crash, budget, fatal error): the
chatgpt generator's cache holds every finished call and the next run skips them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from rich.console import Console

from emoreason.config import ConfigError
from emoreason.data.kote import KoteDownloadError, KoteFormatError, KoteRow
from emoreason.data.reasoning import ReasoningFormatError, ReasoningRecord, write_reasoning_jsonl
from emoreason.data.reasoning_stats import card_path, reasoning_stats, summary_figures, write_generation_card
from emoreason.data.sampling import seed_sample
from emoreason.generation.config import GenerateConfig, load_config
from emoreason.generation.errors import GenerationError
from emoreason.generation.generator import Generator
from emoreason.generation.progress import next_step, summary_table
from emoreason.generation.prompt import PromptTemplate
from emoreason.io import write_json_atomic

log = logging.getLogger(__name__)


def sample_rows(cfg: GenerateConfig) -> list[KoteRow]:
    """The seed sample: ``n`` labelled non-test rows of ``data.source`` (train + val of its split), seeded.
    Training does not draw it again: it joins the reasoning dataset back to KOTE rows by ID."""
    try:
        splits = cfg.source.load()
    except (KoteFormatError, KoteDownloadError) as exc:
        raise GenerationError(str(exc)) from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    pool = splits.train + splits.val
    try:
        return seed_sample(pool, len(pool) if cfg.n is None else cfg.n, cfg.seed)
    except ValueError as exc:
        raise ConfigError(
            f"n: {exc} (split_scheme={splits.scheme}); lower n, or n=null for all of them"
        ) from None


def _write_dataset(output: str, records: list[ReasoningRecord]) -> str | None:
    if not records:
        log.warning("no item has reasoning yet: %s not written", output)
        return None
    return str(write_reasoning_jsonl(output, records))


EXAMPLE_NAMES = {"output": "reasoning.jsonl", "summary_path": "summary.json"}
"""A file name to suggest for each key when the one given would overwrite an input."""


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: equal once resolved (symlinks, ``..``), or hard links to it."""
    first, second = Path(a).expanduser(), Path(b).expanduser()
    if first.resolve() == second.resolve():
        return True
    return first.exists() and second.exists() and os.path.samefile(first, second)


def refuse_overwrites(settings: GenerateConfig) -> None:
    """Stop before anything runs if a file this run writes is one it reads (or its own cache).

    ``generator=cached generator.source=$KOTE_REASONING_PATH`` with ``output`` pointing at the same file
    would replace a 1,000-record dataset by the few records sampled; nothing a run writes may be its input.
    """
    inputs = dict(settings.generator.inputs(settings))
    kote = Path(settings.source.root)
    if kote.is_dir():
        inputs |= {
            f"a KOTE file in data.source.root ({p.name})": str(p)
            for p in sorted(kote.iterdir())
            if p.is_file()
        }
    card = card_path(settings.output)
    written = [  # (the key that names it, the file, how the message calls it)
        ("output", settings.output, str(settings.output)),
        ("summary_path", settings.summary_path, str(settings.summary_path)),
        ("output", card, f"its dataset card {card}"),
    ]
    for key, out, what in written:
        for in_key, source in inputs.items():
            if out is not None and _same_file(out, source):
                raise ConfigError(
                    f"{key}: {what} is {in_key}; writing it would destroy that input. Give {key} a new file "
                    f"(e.g. {key}=data/generated/{EXAMPLE_NAMES[key]})"
                )
    summary = settings.summary_path
    for also, out in (("output", settings.output), (f"output's dataset card {card.name}", card)):
        if summary is not None and _same_file(out, summary):
            raise ConfigError(f"summary_path: {summary} is also {also}; give them different files")


def _report(summary: dict[str, Any], settings: GenerateConfig) -> None:
    if settings.summary_path:
        write_json_atomic(settings.summary_path, summary)
    log.info("summary: %s", json.dumps(summary, ensure_ascii=False))
    if settings.progress:
        Console(stderr=True).print(summary_table(summary))


def generate(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Run one generation as configured (see ``conf/generate.yaml``) and return its summary.

    Raises :class:`~emoreason.config.ConfigError` for a bad config, and
    :class:`~emoreason.generation.errors.GenerationError` subclasses for unreadable KOTE files, a corrupt or
    busy cache, missing cached reasoning and fatal API errors; in the last case the dataset and summary of
    what did finish are written first.
    """
    started = time.monotonic()
    settings = load_config(cfg)
    prompt = PromptTemplate.from_config(settings.prompt)
    generator: Generator = settings.generator
    generator.check(settings)
    refuse_overwrites(settings)
    rows = sample_rows(settings)
    outcome = generator.generate(rows, settings, prompt)
    summary: dict[str, Any] = {"generator": generator.name, "dry_run": settings.dry_run, **outcome.summary}
    stats = None
    if outcome.records is not None:
        try:
            summary["output"] = _write_dataset(settings.output, outcome.records)
        except ReasoningFormatError as exc:
            raise GenerationError(
                f"generator {generator.name} returned a record the reasoning dataset format refuses, nothing "
                f"written: {exc} (docs/generation.md, 'Adding a generator backend')"
            ) from exc
        if summary["output"] is not None:
            stats = reasoning_stats(summary["output"], outcome.records)
            summary["dataset_stats"] = summary_figures(stats)
    summary["complete"] = outcome.complete
    summary["wall_s"] = round(time.monotonic() - started, 2)
    if not summary["complete"]:
        summary["next_step"] = next_step(summary)
    _report(summary, settings)
    write_generation_card(summary, f"System:\n{prompt.system}\n\nUser:\n{prompt.user}", stats)
    if outcome.fatal is not None:
        raise outcome.fatal
    return summary
