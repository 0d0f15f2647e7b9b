"""``metrics.json`` and ``test_predictions.jsonl``: the typed records a run writes and a sweep reads back.

Why one module: these two files are the only contract between a run and the sweep report, and a rerun of a
sweep skips a job by reading its ``metrics.json``; written and read here, as dataclasses, a new figure is one
field and an old file is still read. The JSON keeps the shape it always had (keys and nesting, ``at_0.5``
included) plus ``schema_version``; a file without one is version 0 (written before the field existed) and
reads the same way, figures added since (``at_0.3``, ``macro_auroc``, ``support`` …) being absent there.
Unknown top-level keys are kept (``extra``), so reading and writing back loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from emoreason.data.kote import KoteRow
from emoreason.evaluation.files import METRICS_FILE, PREDICTIONS_FILE
from emoreason.io import iter_jsonl, write_json_atomic, write_jsonl_atomic
from emoreason.labels import LABELS, label_names

SCHEMA_VERSION = 1
"""Version 1 adds ``schema_version`` itself; version 0 (no field) has the same shape."""


class RecordError(ValueError):
    """A metrics or predictions file that cannot be read; the message names the file and the key or line."""


@dataclass(frozen=True)
class Figures:
    """F1 at one threshold (:func:`emoreason.training.metrics.score_metrics`); F1 in [0, 1]."""

    macro_f1: float
    micro_f1: float
    weighted_f1: float
    per_label_f1: dict[str, float]
    macro_f1_supported: float | None = None
    """Macro-F1 over the labels with a gold row; None where none has one (or in a version-0 file)."""

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Figures:
        return cls(**{f.name: payload[f.name] for f in fields(cls) if f.name in payload})

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SplitReport:
    """One split's figures at the tuned threshold, at 0.5 and at KOTE's 0.3, and the method's diagnostics."""

    rows: int
    tuned: Figures
    at_05: Figures
    """``at_0.5`` on disk."""
    at_03: Figures | None = None
    """``at_0.3`` on disk: the KOTE paper's fixed threshold."""
    macro_auroc: float | None = None
    support: dict[str, int] | None = None
    """Gold rows per label."""
    labels_without_support: list[str] | None = None
    diagnostics: dict[str, float] = field(default_factory=dict)
    """Split means of a method's per-row figures (e.g. ``unparseable_rate``), top-level keys on disk."""

    KNOWN = ("rows", "support", "labels_without_support", "tuned", "at_0.5", "at_0.3", "macro_auroc")

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> SplitReport:
        return cls(
            rows=payload["rows"],
            tuned=Figures.from_json(payload["tuned"]),
            at_05=Figures.from_json(payload["at_0.5"]),
            at_03=Figures.from_json(payload["at_0.3"]) if "at_0.3" in payload else None,
            macro_auroc=payload.get("macro_auroc"),
            support=payload.get("support"),
            labels_without_support=payload.get("labels_without_support"),
            diagnostics={k: v for k, v in payload.items() if k not in cls.KNOWN},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": self.rows}
        if self.support is not None:
            out |= {"support": self.support, "labels_without_support": self.labels_without_support}
        out |= {"tuned": self.tuned.to_json(), "at_0.5": self.at_05.to_json()}
        if self.at_03 is not None:
            out["at_0.3"] = self.at_03.to_json()
        return out | {"macro_auroc": self.macro_auroc} | self.diagnostics


@dataclass(frozen=True)
class Results:
    """The decision threshold, where it came from, and the splits scored with it."""

    threshold: float
    threshold_source: str | None
    """``tuned on val``, ``given``, or why validation could not tune it; None in a file from before the field
    (left out again when written back)."""
    val: SplitReport | None = None
    test: SplitReport | None = None

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Results:
        return cls(
            threshold=payload["threshold"],
            threshold_source=payload.get("threshold_source"),
            val=SplitReport.from_json(payload["val"]) if "val" in payload else None,
            test=SplitReport.from_json(payload["test"]) if "test" in payload else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"threshold": self.threshold}
        if self.threshold_source is not None:
            out["threshold_source"] = self.threshold_source
        for name in ("val", "test"):
            if (split := getattr(self, name)) is not None:
                out[name] = split.to_json()
        return out


@dataclass
class RunMetrics:
    """``metrics.json``: which run, and its :class:`Results` (absent when it tested nothing).

    ``run`` holds the entry point's own record, in write order: ``train`` writes ``data_sizes``,
    ``data_sources``, ``best_checkpoint``, ``tested_weights``, ``global_step``, ``tags`` and ``wall_time_s``;
    ``evaluate`` writes ``checkpoint`` and ``test_source``. Keys this version does not know land there too.
    """

    model: str
    method: str
    seed: int
    split_scheme: str | None = None
    """None only for a hand-made file without it (left out again when written back)."""
    results: Results | None = None
    run: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    HEAD = ("model", "method", "seed", "split_scheme")
    RESULTS = ("threshold", "threshold_source", "val", "test")

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> RunMetrics:
        version = payload.get("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RecordError(f"schema_version {version!r} is newer than this code reads ({SCHEMA_VERSION})")
        known = {*cls.HEAD, *cls.RESULTS, "schema_version"}
        return cls(
            model=payload["model"],
            method=payload["method"],
            seed=payload["seed"],
            split_scheme=payload.get("split_scheme"),
            results=Results.from_json(payload) if "threshold" in payload else None,
            run={k: v for k, v in payload.items() if k not in known},
            schema_version=version,
        )

    def to_json(self) -> dict[str, Any]:
        """The payload as written: the same keys and nesting as ever, ``schema_version`` first."""
        head = {"schema_version": self.schema_version, "model": self.model, "method": self.method}
        head["seed"] = self.seed
        if self.split_scheme is not None:
            head["split_scheme"] = self.split_scheme
        results = self.results.to_json() if self.results is not None else {}
        timing = {k: v for k, v in self.run.items() if k == "wall_time_s"}
        return head | {k: v for k, v in self.run.items() if k not in timing} | results | timing


def write_metrics(output_dir: str | Path, metrics: RunMetrics) -> Path:
    """``<output_dir>/metrics.json``, atomically (a sweep rerun reads a finished job's file)."""
    return write_json_atomic(Path(output_dir) / METRICS_FILE, metrics.to_json())


def read_metrics(path: str | Path) -> RunMetrics:
    """A ``metrics.json`` of any version; :class:`RecordError` naming the file and key when malformed."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(payload, dict):
            raise RecordError("expected a JSON object")
        return RunMetrics.from_json(payload)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not JSON ({exc}); delete it to run the job again") from None
    except KeyError as exc:
        raise RecordError(f"{path}: missing key {exc}; delete it to run the job again") from None
    except (RecordError, TypeError, AttributeError) as exc:
        raise RecordError(f"{path}: {exc}; delete it to run the job again") from None


@dataclass(frozen=True)
class PredictionRecord:
    """One row of ``test_predictions.jsonl``: label names, scores in [0, 1] to four places."""

    id: str
    text: str
    gold: list[str]
    predicted: list[str]
    scores: dict[str, float]
    generated: str | None = None
    """What a generative method wrote (reasoning and label line); absent on disk for a classifier."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "gold": self.gold,
            "predicted": self.predicted,
        }
        if self.generated is not None:
            out["generated"] = self.generated
        return out | {"scores": self.scores}


def prediction_records(
    rows: Sequence[KoteRow], scores: torch.Tensor, threshold: float, generated: Sequence[str] | None = None
) -> list[PredictionRecord]:
    """One record per row of ``rows`` and its ``(rows, 44)`` ``scores``, predicted as the metrics predict.

    A label is predicted when its score exceeds ``threshold``. ``generated`` (in ``rows`` order) is what a
    generative method wrote for each row; None for a classifier.
    """
    above = (scores > threshold).tolist()  # compared in the scores' dtype, exactly as the metrics compare
    return [
        PredictionRecord(
            id=row.id,
            text=row.text,
            gold=label_names(row.labels),
            predicted=[label for label, on in zip(LABELS, above[i], strict=True) if on],
            scores={label: round(score, 4) for label, score in zip(LABELS, row_scores, strict=True)},
            generated=None if generated is None else generated[i],
        )
        for i, (row, row_scores) in enumerate(zip(rows, scores.tolist(), strict=True))
    ]


def write_predictions(output_dir: str | Path, records: Sequence[PredictionRecord]) -> Path:
    return write_jsonl_atomic(Path(output_dir) / PREDICTIONS_FILE, [r.to_json() for r in records])


def iter_predictions(
    path: Path, error: type[Exception] = RecordError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a ``test_predictions.jsonl``, each an object with id, gold and predicted.

    Records stay plain dicts: a reader checks the label names its own way (sweeps/paired.py builds arrays).
    """
    for lineno, record in iter_jsonl(path, error=error):
        if not isinstance(record, dict) or not {"id", "gold", "predicted"} <= record.keys():
            raise error(f"{path}:{lineno}: expected an object with 'id', 'gold' and 'predicted'")
        yield lineno, record
