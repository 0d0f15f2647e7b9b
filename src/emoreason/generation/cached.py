"""The ``cached`` generator: reasoning served from an existing file, with no network at all.

The source is a reasoning dataset (such as ``reasoning.jsonl`` from another run or a colleague's
output) or a generation cache; records are matched to the sampled KOTE rows by ``id`` and must agree with
them on text and labels, so a file made from another KOTE revision cannot slip in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from emoreason.config import ConfigError
from emoreason.data.kote import KoteRow
from emoreason.data.reasoning import ReasoningFormatError, ReasoningRecord, read_reasoning_jsonl
from emoreason.generation.config import GenerateConfig
from emoreason.generation.errors import GenerationError
from emoreason.generation.generator import Outcome
from emoreason.generation.prompt import PromptTemplate
from emoreason.generation.store import is_cache_file, read_entries

SHOWN_IDS = 10


class MissingReasoningError(GenerationError):
    """Sampled comments the source has no reasoning for (and ``allow_missing`` is false)."""


def _first(ids: Sequence[str]) -> str:
    more = f" (+{len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else ""
    return ", ".join(ids[:SHOWN_IDS]) + more


@dataclass
class CachedGenerator:
    """The ``cached`` generator (``conf/generator/cached.yaml``): serve reasoning from a file, never from the
    network. Its fields are the config keys."""

    name: str = "cached"
    source: str = MISSING
    allow_missing: bool = False
    model: str | None = None
    prompt_version: str | None = None

    def check(self, settings: GenerateConfig) -> None:
        """Nothing beyond its own keys: no key, no price, no cache."""

    def inputs(self, settings: GenerateConfig) -> dict[str, str]:
        return {"generator.source": self.source}

    def generate(self, rows: Sequence[KoteRow], settings: GenerateConfig, prompt: PromptTemplate) -> Outcome:
        """The source's records for ``rows``; complete when none is missing or skipping them was asked for."""
        records, missing = serve_cached(rows, self)
        summary = {
            "items": len(rows),
            "completed": len(records),
            "skipped_missing": len(missing),
            "requests": 0,
            "source": self.source,
        }
        return Outcome(summary, complete=not missing or self.allow_missing, records=records)


def load_source(cfg: CachedGenerator) -> dict[str, ReasoningRecord]:
    """Records of ``cfg.source`` by id, filtered by ``cfg.model``/``cfg.prompt_version`` when set."""
    path = Path(cfg.source)
    if not path.is_file():
        raise ConfigError(
            f"generator.source: {path} is not a file; point it at a reasoning dataset or generation cache, "
            "e.g. generator.source=data/kote_reasoning/reasoning.jsonl"
        )
    if is_cache_file(path):
        records = [e.record for e in read_entries(path).values() if e.status == "ok"]
    else:
        try:
            records = read_reasoning_jsonl(path)
        except ReasoningFormatError as exc:
            raise GenerationError(f"generator.source: {exc}") from None
    by_id: dict[str, list[ReasoningRecord]] = defaultdict(list)
    for record in records:
        if cfg.model is not None and record.model != cfg.model:
            continue
        if cfg.prompt_version is not None and record.prompt_version != cfg.prompt_version:
            continue
        by_id[record.id].append(record)
    ambiguous = sorted(i for i, found in by_id.items() if len(found) > 1)
    if ambiguous:
        variants = sorted({(r.model, r.prompt_version) for i in ambiguous for r in by_id[i]}, key=str)
        raise ConfigError(
            f"generator.source: {path} holds several reasonings for {len(ambiguous)} ids "
            f"({_first(ambiguous)}) from (model, prompt_version) {variants}; choose one with generator.model "
            "and/or generator.prompt_version"
        )
    return {i: found[0] for i, found in by_id.items()}


def serve_cached(rows: Sequence[KoteRow], cfg: CachedGenerator) -> tuple[list[ReasoningRecord], list[str]]:
    """The source's record for each row, in row order, and the ids it lacks (an error unless allowed)."""
    source = load_source(cfg)
    records: list[ReasoningRecord] = []
    missing: list[str] = []
    disagreeing: list[str] = []
    for row in rows:
        record = source.get(row.id)
        if record is None:
            missing.append(row.id)
        elif record.text != row.text or record.label_ids != row.labels:
            disagreeing.append(row.id)
        else:
            records.append(record)
    if disagreeing:
        raise GenerationError(
            f"{len(disagreeing)} records in {cfg.source} disagree with the KOTE rows of the same id on text "
            f"or labels (first: {_first(disagreeing)}); the file was made from another KOTE revision"
        )
    if missing and not cfg.allow_missing:
        raise MissingReasoningError(
            f"{len(missing)} of {len(rows)} sampled comments have no reasoning in {cfg.source} "
            f"(first ids: {_first(missing)}). Set generator.allow_missing=true to skip them, choose n/seed "
            "to match the file, or generate them with generator=chatgpt."
        )
    return records, missing
