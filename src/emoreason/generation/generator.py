"""The generator contract: everything ``run.generate`` asks of a source of reasoning, and nothing more.

A generator is the class a ``conf/generator/*.yaml`` names in ``_target_``; its config keys are its
constructor's arguments (a dataclass's fields are merged in as a typed schema, so a misspelt key fails naming
it). :func:`emoreason.generation.run.generate` samples the rows, then calls, in this order and once each:

1. :meth:`Generator.check` with the whole run's settings, before anything is read (e.g. a price that
   ``max_cost_usd`` needs);
2. :meth:`Generator.inputs`: the files it reads, so that no output of the run can overwrite one;
3. :meth:`Generator.generate` with the sampled rows: the reasoning it has for them, and what it took.

``run.generate`` writes the dataset, the summary and the dataset card from the :class:`Outcome`, then raises
its ``fatal`` error, if any. Adding a backend: docs/generation.md, "Adding a generator backend".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from emoreason.data.kote import KoteRow
from emoreason.data.reasoning import ReasoningRecord
from emoreason.generation.errors import GenerationError

if TYPE_CHECKING:
    from emoreason.generation.config import GenerateConfig
    from emoreason.generation.prompt import PromptTemplate


@dataclass
class Outcome:
    """What one :meth:`Generator.generate` call produced.

    ``summary`` holds the generator's own keys (requests, cost, ...), merged into the run's summary (JSON,
    the table, the dataset card: ``model``, ``prompt_version``, ``dataset_cost_usd``, ``source`` are read
    there). ``complete`` says whether every sampled row has reasoning (for a dry run: whether every planned
    call fits ``max_cost_usd``); it decides the exit status. ``records`` is the dataset to write at
    ``output`` (every row with reasoning so far, under its own id), or None to write none (a dry run).
    ``fatal`` stops the run with that error once the dataset and summary of what did finish are written.
    """

    summary: dict[str, Any]
    complete: bool
    records: list[ReasoningRecord] | None = None
    fatal: GenerationError | None = None


@runtime_checkable
class Generator(Protocol):
    """A source of reasoning for sampled KOTE rows (an API, a file, a local model...).

    Errors: a setting that cannot work is a :class:`~emoreason.config.ConfigError` naming its key
    (``generator.<key>``); anything else that stops the run is a
    :class:`~emoreason.generation.errors.GenerationError` whose message says what to do. Both are printed as
    one line and exit 2 (a subclass may set ``exit_code = 1``: "rerun to continue").
    """

    name: str
    """The label of the summary's ``generator`` key (``chatgpt``, ``cached``...)."""

    def check(self, settings: GenerateConfig) -> None:
        """Raise ``ConfigError`` for settings of the run that this generator cannot work with."""
        ...

    def inputs(self, settings: GenerateConfig) -> Mapping[str, str]:
        """The files this generator reads (or keeps state in), as ``{what it is (a key): path}``."""
        ...

    def generate(self, rows: Sequence[KoteRow], settings: GenerateConfig, prompt: PromptTemplate) -> Outcome:
        """Reasoning for ``rows`` (the seed sample, in order), rendered with ``prompt``."""
        ...
