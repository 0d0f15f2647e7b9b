"""Batch mode (``generator.mode=batch``): the pending items as OpenAI Batch API jobs, at half the price.

Steps, per batch: write one request line per pending call (``custom_id`` = cache key; the same request body
as online, ``ChatClient.build_body``), upload it (``purpose=batch``), create the batch, poll until it
ends, download the output and error files, and merge every line into the same cache as online mode, by
``custom_id``, through the same parser and classifier as online answers.

Pending work is split into batches of at most ``batch_max_requests`` requests and ``batch_max_tokens``
estimated prompt tokens (providers cap the tokens enqueued per model; OpenAI's
https://platform.openai.com/docs/guides/rate-limits lists "batch queue limits"), submitted one after the
other: the next is created only when the previous one has ended, so they never sum over the cap.

A batch is paid for once created, so its state (input file id, then batch id, and what each ``custom_id``
stands for) is saved beside the cache *before* anything waits on it. A rerun after an interruption resumes
that batch, whatever the config says now, and merges its results before deciding what is still pending.
Only a crash in the instant between creating the batch and saving its id needs more: the rerun looks the
batch up by its input file with ``GET /v1/batches``; a server without that listing gets a new batch and a
warning. Nothing else needs listing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import openai
from openai.types import Batch

from emoreason.data.kote import KoteRow
from emoreason.generation.client import AbortedError, ChatClient, RetriesExhaustedError
from emoreason.generation.config import Mode
from emoreason.generation.cost import Pricing, affordable, estimate_prompt_tokens, worst_case_usd
from emoreason.generation.errors import CacheError, FatalAPIError, GenerationError
from emoreason.generation.faults import Failure, error_object
from emoreason.generation.items import CallOutcome, WorkItem, entry_from_result, rejected_entry
from emoreason.generation.progress import ProgressBar
from emoreason.generation.store import GenerationCache
from emoreason.io import atomic_write, fsync_dir
from emoreason.labels import LABEL_TO_ID

log = logging.getLogger(__name__)

ENDPOINT: Final = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
NO_LISTING = frozenset({404, 405, 501})
"""Statuses of a server that implements Batches create/retrieve but not ``GET /v1/batches``."""


@dataclass
class BatchState:
    """What must survive a crash once a batch may exist: enough to find it and to read its results."""

    input_file_id: str
    batch_id: str | None
    model: str
    prompt_version: str
    created: float
    items: dict[str, dict[str, Any]]
    create_attempted: bool = False

    def item(self, key: str) -> WorkItem:
        meta = self.items[key]
        labels = tuple(meta["labels"])
        row = KoteRow(id=meta["id"], text=meta["text"], labels=tuple(LABEL_TO_ID[n] for n in labels))
        return WorkItem(row=row, labels=labels, messages=[], key=key)


def state_path(cache_path: Path) -> Path:
    return cache_path.with_name(cache_path.name + ".batch.json")


def load_state(path: Path) -> BatchState | None:
    if not path.exists():
        return None
    try:
        return BatchState(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise CacheError(
            f"{path}: unreadable batch state ({exc}). It records a batch that may already be paid for: "
            "look its id up at platform.openai.com/batches before deleting this file."
        ) from None


def save_state(path: Path, state: BatchState) -> None:
    """Write the state atomically and durably: it is the only link to a batch that may be paid for."""
    with atomic_write(path) as handle:
        json.dump(asdict(state), handle, ensure_ascii=False)


def request_line(item: WorkItem, body: dict[str, Any]) -> bytes:
    line = {"custom_id": item.key, "method": "POST", "url": ENDPOINT, "body": body}
    return json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n"


class BatchRunner:
    """Submits, resumes, polls and merges batches for one run (online mode's twin:
    :class:`~emoreason.generation.online.OnlineRunner` takes the same arguments and returns the same outcome).
    """

    def __init__(
        self, client: ChatClient, cache: GenerationCache, progress: ProgressBar, *, prompt_version: str
    ) -> None:
        self.client = client
        self.cfg = client.cfg
        self.cache = cache
        self.progress = progress
        self.prompt_version = prompt_version
        self.state_file = state_path(cache.path)
        self.outcome = CallOutcome()

    async def run(self, pending: list[WorkItem]) -> CallOutcome:
        """Resume a saved batch if there is one, then submit what is still pending, one batch at a time.

        A stop (fatal error, breaker, interrupted download) leaves the saved state for the next run and
        marks what was not done; it never raises, so the summary of what did finish is written.
        """
        try:
            await self._run(pending)
        except (GenerationError, AbortedError, RetriesExhaustedError) as exc:
            if not isinstance(exc, GenerationError | AbortedError):
                self.client.stop(
                    FatalAPIError(f"batch mode stopped: {exc}; rerun the same command to resume")
                )
            for item in pending:
                if item.key not in self.cache.entries:
                    self.outcome.unresolved.setdefault(item.key, "aborted")
        return self.outcome

    async def _run(self, pending: list[WorkItem]) -> None:
        state = load_state(self.state_file)
        if state is not None:
            log.info("resuming batch %s saved in %s", state.batch_id or "(being created)", self.state_file)
            pending = [item for item in pending if item.key not in state.items]
            if not await self._finish(state):
                self._waiting(pending)
                return
        pending = self._within_budget(pending)
        while pending and self.client.stopped is None:
            chunk, pending = self._split(pending)
            state = await self._submit(chunk)
            if not await self._finish(state):
                self._waiting(pending)
                return
        for item in pending:  # the run was stopped (by a refused batch) before these were submitted
            self.outcome.unresolved.setdefault(item.key, "aborted")

    def _waiting(self, items: list[WorkItem]) -> None:
        for item in items:
            self.outcome.unresolved.setdefault(item.key, "waiting_for_batch")

    def _within_budget(self, pending: list[WorkItem]) -> list[WorkItem]:
        pricing = Pricing.for_model(self.cfg, self.cfg.model, Mode.batch)
        worst = [worst_case_usd(i.messages, pricing, self.cfg.max_tokens) for i in pending]
        fits = affordable(worst, self.client.budget.limit_usd)
        for item in pending[fits:]:
            self.outcome.unresolved[item.key] = "budget"
        return pending[:fits]

    def _split(self, pending: list[WorkItem]) -> tuple[list[WorkItem], list[WorkItem]]:
        """The next batch (within both ceilings; never empty) and what is left for later ones."""
        tokens = 0
        for count, item in enumerate(pending):
            tokens += estimate_prompt_tokens(item.messages, self.cfg.bytes_per_token)
            over = self.cfg.batch_max_tokens is not None and tokens > self.cfg.batch_max_tokens
            if count and (count >= self.cfg.batch_max_requests or over):
                return pending[:count], pending[count:]
        return pending, []

    async def _submit(self, pending: list[WorkItem]) -> BatchState:
        data = b"".join(request_line(i, self.client.build_body(i.messages)) for i in pending)
        upload = await self.client.call(
            lambda: self.client.openai.files.create(file=("emoreason-batch.jsonl", data), purpose="batch"),
            what="the Files API",
        )
        items = {i.key: {"id": i.row.id, "text": i.row.text, "labels": list(i.labels)} for i in pending}
        state = BatchState(upload.id, None, self.cfg.model, self.prompt_version, time.time(), items)
        save_state(self.state_file, state)
        log.info("uploaded %d batch requests as %s", len(pending), upload.id)
        return state

    async def _created_before(self, state: BatchState) -> str | None:
        """The id of a batch already made from ``state.input_file_id`` (listing stops at older batches)."""
        try:
            async for batch in self.client.openai.batches.list(limit=100):
                if batch.input_file_id == state.input_file_id:
                    return batch.id
                if batch.created_at < state.created - 3600:
                    return None
        except openai.APIStatusError as exc:
            if exc.status_code not in NO_LISTING:
                raise
            log.warning(
                "%s cannot list batches (%d), so a batch created from %s just before the last run stopped "
                "cannot be looked up; creating one. If the provider shows two batches for that file, cancel "
                "one.",
                self.client.where,
                exc.status_code,
                state.input_file_id,
            )
        return None

    async def _find_or_create(self, state: BatchState) -> str:
        """The batch for ``state.input_file_id``: one created before a crash, or a new one."""
        if state.create_attempted:
            found = await self.client.call(lambda: self._created_before(state), what="the Batches API")
            if found is not None:
                return found
        state.create_attempted = True
        save_state(self.state_file, state)
        try:
            batch = await self.client.call(
                lambda: self.client.openai.batches.create(
                    input_file_id=state.input_file_id,
                    endpoint=ENDPOINT,
                    completion_window="24h",
                    metadata={"source": "emoreason generate.py", "prompt_version": state.prompt_version},
                ),
                what=f"the Batches API (input file {state.input_file_id})",
            )
        except FatalAPIError:
            await self._discard(state)
            raise
        return batch.id

    async def _discard(self, state: BatchState) -> None:
        """No batch was created: delete the uploaded file (best effort) and the state that points at it."""
        try:
            await self.client.openai.files.delete(state.input_file_id)
        except openai.OpenAIError as exc:
            log.warning(
                "could not delete uploaded file %s (%s)", state.input_file_id, self.client.redact(str(exc))
            )
        self.state_file.unlink(missing_ok=True)
        fsync_dir(self.state_file.parent)

    async def _finish(self, state: BatchState) -> bool:
        """Wait for the batch and merge it; False when ``batch_wait=false`` left it running."""
        if state.batch_id is None:
            state.batch_id = await self._find_or_create(state)
            save_state(self.state_file, state)
            log.info("batch %s created; its id is saved in %s", state.batch_id, self.state_file)
        batch_id = state.batch_id
        what = f"batch {batch_id} (saved in {self.state_file})"
        batch = await self.client.call(lambda: self.client.openai.batches.retrieve(batch_id), what=what)
        while batch.status not in TERMINAL and self.cfg.batch_wait:
            self._show(batch)
            await asyncio.sleep(self.cfg.batch_poll_s)
            batch = await self.client.call(lambda: self.client.openai.batches.retrieve(batch_id), what=what)
        self.outcome.batches.append({"id": batch.id, "status": batch.status, "requests": len(state.items)})
        if batch.status not in TERMINAL:
            log.info("batch %s is %s; rerun the same command later to collect it", batch.id, batch.status)
            for key in state.items:
                self.outcome.unresolved[key] = "batch_pending"
            return False
        self._show(batch)
        await self._merge(batch, state)
        self.state_file.unlink()
        fsync_dir(self.state_file.parent)
        if batch.status == "failed":
            errors = batch.errors.data if batch.errors and batch.errors.data else []
            shown = "; ".join(self.client.redact(f"{e.code}: {e.message}") for e in errors) or "no details"
            advice = (
                "lower generator.batch_max_tokens (or batch_max_requests) to the provider's queue limit"
                if any(e.code == "token_limit_exceeded" for e in errors)
                else "fix what it names"
            )
            self.client.stop(
                FatalAPIError(
                    f"batch {batch.id} failed validation ({shown}); nothing was charged: {advice}, rerun"
                )
            )
        return True

    def _show(self, batch: Batch) -> None:
        counts = batch.request_counts
        if counts is not None:
            self.progress.set_completed(counts.completed + counts.failed)

    async def _merge(self, batch: Batch, state: BatchState) -> None:
        pricing = Pricing.for_model(self.cfg, state.model, Mode.batch)
        seen: set[str] = set()
        fatal: list[Failure] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.call(
                functools.partial(self.client.openai.files.content, file_id), what=f"file {file_id}"
            )
            for number, text in enumerate(content.text.splitlines(), 1):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                except ValueError:
                    log.warning(
                        "%s line %d is not JSON; its item stays pending for the next run", file_id, number
                    )
                    continue
                if isinstance(line, Mapping):
                    seen.add(await self._merge_line(line, state, pricing, fatal))
        for key in state.items.keys() - seen:
            self.outcome.unresolved.setdefault(key, f"batch_{batch.status}")
        if fatal:
            self.client.stop(
                FatalAPIError(
                    f"batch {batch.id}: {len(fatal)} of {len(state.items)} requests were refused: "
                    f"{fatal[0].message}"
                )
            )

    async def _merge_line(
        self, line: Mapping[str, Any], state: BatchState, pricing: Pricing | None, fatal: list[Failure]
    ) -> str:
        key = str(line.get("custom_id"))
        if key not in state.items:
            log.warning("batch line with unknown custom_id %s ignored", key)
            return key
        old = self.cache.entries.get(key)
        if old is not None and old.status == "ok":
            return key  # merged before an interruption
        item = state.item(key)
        response = line.get("response")
        response = response if isinstance(response, Mapping) else {}
        status = response.get("status_code")
        status = status if isinstance(status, int) else None
        body = response.get("body")
        if status == 200:
            answer = self.client.read_answer(body, pricing)
        else:
            error = error_object(body) or error_object({"error": line.get("error")}) or body
            answer = self.client.classify(status, error if isinstance(error, Mapping | str) else None)
        if isinstance(answer, Failure):
            if answer.kind != "item":
                self.outcome.unresolved[key] = f"batch_{answer.reason}"
                if answer.kind == "fatal":
                    fatal.append(answer)
                return key
            entry = rejected_entry(item, answer.reason, answer.message, state.prompt_version, "batch")
        else:
            entry = entry_from_result(item, *answer, state.prompt_version, "batch")
        await self.cache.append(entry)
        self.outcome.stored.append(entry)
        return key
