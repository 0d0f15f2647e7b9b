"""A reasoning dataset's own statistics and its dataset card.

``python -m emoreason.data.reasoning_stats PATH [--json] [--card CARD.md --prompt prompt.md ...]``

What it measures, for any file in the reasoning format (:mod:`emoreason.data.reasoning`):

- records, and the reasoning's length in characters (min, 5th/50th/95th percentile, mean, max);
- label leakage: how often a gold label's full name (e.g. ``화남/분노``) appears verbatim in its reasoning,
  which the generation prompt forbids (not inside a longer label name: :func:`leaked_labels`); counted per
  gold label and per record;
- duplicates: records whose reasoning repeats an earlier one word for word, and the most repeated closings
  (last three words: a stock phrase the model fell into);
- refusals: reasoning that declines the task (Korean and English refusal phrases, :data:`REFUSAL_MARKERS`);
- truncations: ``finish_reason == "length"`` where recorded, and reasoning that does not end a sentence;
- the models, prompt versions and tokens recorded in the records.

The card follows Hugging Face's dataset-card layout (YAML metadata, then summary, source, creation,
statistics, license: https://huggingface.co/docs/hub/datasets-cards).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emoreason.data.reasoning import ReasoningFormatError, ReasoningRecord, read_reasoning_jsonl
from emoreason.io import write_text_atomic
from emoreason.labels import LABELS

log = logging.getLogger(__name__)

REFUSAL_MARKERS = (
    "죄송하지만",
    "죄송합니다만",
    "도와드릴 수 없",
    "답변드릴 수 없",
    "제공할 수 없",
    "AI 언어 모델",
    "I'm sorry",
    "I am sorry",
    "I cannot",
    "As an AI",
)
"""Phrases of a model declining the task (case-sensitive substrings). Not bare 죄송 or 할 수 없: reasoning
quotes comments that apologise, and 이해할 수 없다 ("cannot understand") is ordinary analysis."""
SENTENCE_END = re.compile(r"[.!?。…~\"')\]]\s*$|[다요죠음함임]\s*$")
"""How a complete Korean or English reasoning ends: final punctuation, or a sentence-final ending."""
CLOSING_WORDS = 3
"""Closings compared: a reasoning's last three words, enough for a stock phrase (본 평가자도 있었다.)."""


@dataclass(frozen=True)
class ReasoningStats:
    """The figures :func:`reasoning_stats` measures (JSON-ready through :func:`dataclasses.asdict`)."""

    path: str
    records: int
    length_chars: dict[str, float]
    gold_labels: int
    leaked_labels: int
    records_with_leak: int
    leaked_by_label: dict[str, int]
    duplicate_reasonings: int
    repeated_closings: list[tuple[str, int]]
    refusals: int
    finish_length: int
    unfinished_sentences: int
    models: dict[str, int] = field(default_factory=dict)
    prompt_versions: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)

    @property
    def leak_rate(self) -> float:
        return self.leaked_labels / self.gold_labels if self.gold_labels else 0.0


LONGER_NAMES = {name: [other for other in LABELS if other != name and name in other] for name in LABELS}
"""The label names that contain another one (``어이없음`` and ``재미없음`` contain ``없음``)."""


def leaked_labels(record: ReasoningRecord) -> list[str]:
    """The record's gold label names that appear verbatim (full name, as a substring) in its reasoning.

    A substring, because Korean attaches particles and endings (``짜증이``, ``경악스러운`` name the label);
    but not inside a longer label name: ``어이없음`` in the reasoning names 어이없음, not 없음 (which a plain
    ``없음``, "there is none", still matches).
    """
    leaked = []
    for name in record.labels:
        text = record.reasoning
        for longer in LONGER_NAMES.get(name, ()):
            text = text.replace(longer, " ")
        if name in text:
            leaked.append(name)
    return leaked


def _percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile ``q`` (0–100) of ``sorted_values``."""
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def _closing(reasoning: str) -> str:
    return " ".join(reasoning.split()[-CLOSING_WORDS:])


def reasoning_stats(path: str | Path, records: list[ReasoningRecord] | None = None) -> ReasoningStats:
    """Statistics of the reasoning dataset at ``path``, read strictly (a defect: ReasoningFormatError)."""
    records = read_reasoning_jsonl(path) if records is None else records
    if not records:
        raise ReasoningFormatError(f"{path}: no records")
    lengths = sorted(len(r.reasoning) for r in records)
    leaks = [leaked_labels(r) for r in records]
    seen: set[str] = set()
    duplicates = 0
    for record in records:
        duplicates += record.reasoning in seen
        seen.add(record.reasoning)
    closings = Counter(_closing(r.reasoning) for r in records)
    tokens: Counter[str] = Counter()
    for record in records:
        if record.usage is not None:
            tokens.update(record.usage.to_json())
    return ReasoningStats(
        path=str(path),
        records=len(records),
        length_chars={
            "min": float(lengths[0]),
            "p5": _percentile(lengths, 5),
            "median": _percentile(lengths, 50),
            "mean": round(statistics.fmean(lengths), 1),
            "p95": _percentile(lengths, 95),
            "max": float(lengths[-1]),
        },
        gold_labels=sum(len(r.labels) for r in records),
        leaked_labels=sum(len(names) for names in leaks),
        records_with_leak=sum(bool(names) for names in leaks),
        leaked_by_label=dict(Counter(name for names in leaks for name in names).most_common()),
        duplicate_reasonings=duplicates,
        repeated_closings=[(text, n) for text, n in closings.most_common(5) if n > 1],
        refusals=sum(any(m in r.reasoning for m in REFUSAL_MARKERS) for r in records),
        finish_length=sum(r.finish_reason == "length" for r in records),
        unfinished_sentences=sum(not SENTENCE_END.search(r.reasoning) for r in records),
        models=dict(Counter(r.model or "not recorded" for r in records)),
        prompt_versions=dict(Counter(r.prompt_version or "not recorded" for r in records)),
        tokens=dict(tokens),
    )


def _percent(part: int, whole: int) -> str:
    return f"{part:,} ({100 * part / whole:.1f}%)" if whole else "0"


def render_stats(stats: ReasoningStats) -> str:
    """The statistics as a Markdown table (what the command prints, and the card's statistics section)."""
    length = stats.length_chars
    spread = (
        f"median {length['median']:.0f}, mean {length['mean']:.1f}, "
        f"5–95% {length['p5']:.0f}–{length['p95']:.0f}, min–max {length['min']:.0f}–{length['max']:.0f}"
    )
    leakage = f"{_percent(stats.leaked_labels, stats.gold_labels)} of {stats.gold_labels:,} gold labels"
    rows = [
        ("records", f"{stats.records:,}"),
        ("reasoning length, characters", spread),
        ("gold label names verbatim in their reasoning (leakage)", leakage),
        ("records with any leaked label name", _percent(stats.records_with_leak, stats.records)),
        ("duplicate reasonings (word for word)", _percent(stats.duplicate_reasonings, stats.records)),
        ("refusals", _percent(stats.refusals, stats.records)),
        ("truncated (finish_reason = length)", _percent(stats.finish_length, stats.records)),
        ("not ending a sentence", _percent(stats.unfinished_sentences, stats.records)),
        ("models", ", ".join(f"{k} ({v:,})" for k, v in stats.models.items())),
        ("prompt versions", ", ".join(f"{k} ({v:,})" for k, v in stats.prompt_versions.items())),
        ("tokens", ", ".join(f"{k} {v:,}" for k, v in stats.tokens.items()) or "not recorded"),
    ]
    lines = ["| statistic | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    if stats.leaked_by_label:
        top = ", ".join(f"{name} {n:,}" for name, n in list(stats.leaked_by_label.items())[:10])
        lines += ["", f"Most leaked label names: {top}."]
    if stats.repeated_closings:
        closings = "; ".join(f"“{text}” ×{n}" for text, n in stats.repeated_closings)
        lines += ["", f"Most repeated closings (last {CLOSING_WORDS} words): {closings}."]
    return "\n".join(lines) + "\n"


SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (float("inf"), "100K<n<1M"),
)
"""Hugging Face's ``size_categories`` bins by record count."""


@dataclass(frozen=True)
class CardInfo:
    """What a dataset card says beyond the statistics: where the data came from and how it was made."""

    source: str = (
        "KOTE (Jeon et al. 2022, https://github.com/searle-j/KOTE): Korean online comments, 44 emotions."
    )
    prompt: str | None = None
    prompt_version: str | None = None
    model: str | None = None
    cost: str | None = None
    license: str = "mit"


def dataset_card(stats: ReasoningStats, info: CardInfo) -> str:
    """A Markdown dataset card (Hugging Face conventions) for the dataset ``stats`` describes."""
    size = next(name for bound, name in SIZE_CATEGORIES if stats.records < bound)
    models = info.model or ", ".join(stats.models)
    versions = info.prompt_version or ", ".join(stats.prompt_versions)
    header = [
        "---",
        f"license: {info.license}",
        "language:",
        "- ko",
        "task_categories:",
        "- text-classification",
        "- text-generation",
        f"size_categories:\n- {size}",
        f"pretty_name: KOTE reasoning ({Path(stats.path).name})",
        "tags:\n- emotion\n- rationale\n- synthetic",
        "---",
    ]
    prompt = ["```", info.prompt.strip(), "```"] if info.prompt else ["The prompt text was not given."]
    body = [
        f"# Dataset card: {Path(stats.path).name}",
        "",
        "## Dataset summary",
        "",
        "Reasoning texts written by a large language model for KOTE comments, each shown its comment and "
        "gold emotion labels (Park & Lee 2023, step 1). One JSON object per line: `id`, `text`, `labels`, "
        "`reasoning` (and, where recorded, `model`, `prompt_version`, `usage`, `finish_reason`); see "
        "`emoreason.data.reasoning`.",
        "",
        "## Source data",
        "",
        info.source,
        "",
        "## Creation",
        "",
        f"- Model: {models}",
        f"- Prompt version: {versions}",
        f"- Cost: {info.cost or 'not recorded'}",
        "",
        "Prompt:",
        "",
        *prompt,
        "",
        "## Statistics",
        "",
        render_stats(stats).rstrip("\n"),
        "",
        "## Known limitations",
        "",
        "Machine-written: the reasoning explains labels it was given and may restate them (see leakage "
        "above); it is not a human annotation.",
        "",
        "## License",
        "",
        f"`{info.license}`. Comments and labels come from KOTE (MIT License); the reasoning is also subject "
        "to the terms of the model provider that wrote it.",
    ]
    return "\n".join([*header, "", *body]) + "\n"


def write_card(
    dataset: str | Path, info: CardInfo, card: str | Path | None = None, stats: ReasoningStats | None = None
) -> Path:
    """Write ``<dataset stem>.card.md`` beside ``dataset`` (or ``card``) and return its path.

    ``stats``, the dataset's when the caller measured them already, spare reading it back.
    """
    target = Path(card) if card is not None else card_path(dataset)
    return write_text_atomic(
        target, dataset_card(stats if stats is not None else reasoning_stats(dataset), info)
    )


def card_path(dataset: str | Path) -> Path:
    """Where a dataset's card goes by default: ``<stem>.card.md`` beside it."""
    dataset = Path(dataset)
    return dataset.with_name(f"{dataset.stem}.card.md")


def summary_figures(stats: ReasoningStats) -> dict[str, Any]:
    """The statistics ``generate.py`` adds to its summary (``dataset_stats``): counts and character lengths.

    Label leakage: ``leaked_labels`` gold labels named verbatim in their reasoning, of ``gold_labels``.
    """
    return {
        "records": stats.records,
        "length_chars": {k: stats.length_chars[k] for k in ("min", "median", "p95", "max")},
        "leaked_labels": stats.leaked_labels,
        "gold_labels": stats.gold_labels,
        "leak_rate": round(stats.leak_rate, 4),
        "records_with_leak": stats.records_with_leak,
        "duplicate_reasonings": stats.duplicate_reasonings,
        "refusals": stats.refusals,
        "truncated": stats.finish_length,
        "unfinished_sentences": stats.unfinished_sentences,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emoreason.data.reasoning_stats",
        description="Statistics of a reasoning dataset (JSONL), and optionally its dataset card.",
    )
    parser.add_argument("path", help="a reasoning dataset, e.g. the reasoning.jsonl generate.py wrote")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
    parser.add_argument("--card", help="write a dataset card (Markdown) to this path")
    parser.add_argument("--prompt", help="a file holding the generation prompt, quoted in the card")
    parser.add_argument("--prompt-version", help="the prompt's version (default: the records')")
    parser.add_argument("--model", help="the model that wrote the reasoning (default: the records')")
    parser.add_argument("--cost", help='what generating it cost, e.g. "$4.10 (gpt-4o-mini, 2.1M tokens)"')
    parser.add_argument("--license", default="mit", help="the card's license identifier (default: mit)")
    args = parser.parse_args(argv)
    try:
        stats = reasoning_stats(args.path)
        prompt = Path(args.prompt).read_text(encoding="utf-8") if args.prompt else None
    except (OSError, ReasoningFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(asdict(stats), ensure_ascii=False, indent=2) if args.json else render_stats(stats), end=""
    )
    if args.card:
        info = CardInfo(
            prompt=prompt,
            prompt_version=args.prompt_version,
            model=args.model,
            cost=args.cost,
            license=args.license,
        )
        print(write_text_atomic(args.card, dataset_card(stats, info)))
    return 0


def write_generation_card(
    summary: dict[str, Any], prompt_text: str | None = None, stats: ReasoningStats | None = None
) -> Path | None:
    """The card of the dataset a ``generate.py`` run wrote, from its summary; None when it wrote none.

    Reads the summary's ``output`` (the dataset), ``model``, ``prompt_version``, ``dataset_cost_usd`` and,
    for the cached generator, ``source``; the card lands beside the dataset as ``<stem>.card.md``.
    ``stats``, the dataset's as the run measured them for its summary, spare reading it back: the card is
    the last thing ``generate.py`` writes before it exits, so its time counts in the wait after the last
    answer.
    """
    output = summary.get("output")
    if not output:
        return None
    cost = summary.get("dataset_cost_usd")
    info = CardInfo(
        source=f"{CardInfo.source} Served from {summary['source']}."
        if summary.get("source")
        else CardInfo.source,
        prompt=prompt_text,
        prompt_version=summary.get("prompt_version"),
        model=summary.get("model"),
        cost=None if cost is None else f"${cost:.4f} (tokens priced as configured in generator.prices)",
    )
    card = write_card(output, info, stats=stats)
    log.info("dataset card: %s", card)
    return card


if __name__ == "__main__":
    sys.exit(main())
