"""Batch mode (``generator.mode=batch``): the pending items as one OpenAI Batch API job, at half the price.

Steps: write one request line per pending call (``custom_id`` = cache key), upload it (``purpose=batch``),
create the batch, poll until it ends, download the output and error files, and merge every line into the
same cache as online mode, by ``custom_id``.

A batch is paid for once created, so its state (input file id, then batch id, and what each ``custom_id``
stands for) is saved beside the cache *before* anything waits on it. A rerun after an interruption resumes
that batch, whatever the config says now, and merges its results before deciding what is still pending. A
crash between creating the batch and saving its id is covered too: the rerun looks the batch up by its input
file instead of creating a second one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from openai.types import Batch
from openai.types.chat import ChatCompletion

from emoreason.data.kote import KoteRow
from emoreason.generation.client import ITEM_LEVEL_400_CODES, ChatClient
from emoreason.generation.config import Mode
from emoreason.generation.cost import Pricing, affordable, worst_case_usd
from emoreason.generation.errors import CacheError, ConfigError, FatalAPIError
from emoreason.generation.items import ChatResult, WorkItem, entry_from_result, rejected_entry
from emoreason.generation.report import ProgressBar
from emoreason.generation.store import CacheEntry, GenerationCache
from emoreason.io import atomic_write, fsync_dir
from emoreason.labels import LABEL_TO_ID

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
MAX_REQUESTS = 50_000
"""OpenAI's limit on requests per batch."""


@dataclass
class BatchState:
    """What must survive a crash once a batch may exist: enough to find it and to read its results."""

    input_file_id: str
    batch_id: str | None
    model: str
    prompt_version: str
    created: float
    items: dict[str, dict[str, Any]]

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


def request_line(item: WorkItem, model: str, temperature: float, max_tokens: int) -> bytes:
    body = {"model": model, "messages": item.messages, "temperature": temperature, "max_tokens": max_tokens}
    line = {"custom_id": item.key, "method": "POST", "url": ENDPOINT, "body": body}
    return json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n"


@dataclass
class BatchOutcome:
    stored: list[CacheEntry]
    unresolved: dict[str, str]
    batches: list[dict[str, Any]]


class BatchRunner:
    """Submits, resumes, polls and merges batches for one run."""

    def __init__(
        self,
        client: ChatClient,
        cache: GenerationCache,
        progress: ProgressBar,
        *,
        prompt_version: str,
        max_cost_usd: float | None,
    ) -> None:
        self.client = client
        self.cfg = client.cfg
        self.cache = cache
        self.progress = progress
        self.prompt_version = prompt_version
        self.max_cost_usd = max_cost_usd
        self.state_file = state_path(cache.path)
        self.outcome = BatchOutcome([], {}, [])

    async def run(self, pending: list[WorkItem]) -> BatchOutcome:
        """Resume a saved batch if there is one, then submit what is still pending (at most one new batch)."""
        state = load_state(self.state_file)
        if state is not None:
            log.info("resuming batch %s saved in %s", state.batch_id or "(being created)", self.state_file)
            if not await self._finish(state):
                for item in pending:
                    self.outcome.unresolved.setdefault(item.key, "waiting_for_batch")
                return self.outcome
            pending = [item for item in pending if item.key not in state.items]
        if pending:
            state = await self._submit(pending)
            if state is not None:
                await self._finish(state)
        return self.outcome

    async def _submit(self, pending: list[WorkItem]) -> BatchState | None:
        if len(pending) > MAX_REQUESTS:
            raise ConfigError(
                f"n: {len(pending)} calls exceed the Batch API's {MAX_REQUESTS} requests per batch; "
                "lower n (finished items stay cached) or use generator.mode=online"
            )
        pricing = Pricing.for_model(self.cfg, self.cfg.model, Mode.batch)
        worst = [worst_case_usd(i.messages, pricing, self.cfg.max_tokens) for i in pending]
        fits = affordable(worst, self.max_cost_usd)
        for item in pending[fits:]:
            self.outcome.unresolved[item.key] = "budget"
        pending = pending[:fits]
        if not pending:
            return None
        data = b"".join(
            request_line(i, self.cfg.model, self.cfg.temperature, self.cfg.max_tokens) for i in pending
        )
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
        async for batch in self.client.openai.batches.list(limit=100):
            if batch.input_file_id == state.input_file_id:
                return batch.id
            if batch.created_at < state.created - 3600:
                return None
        return None

    async def _find_or_create(self, state: BatchState) -> str:
        """The batch for ``state.input_file_id``: one created before a crash, or a new one."""
        found = await self.client.call(lambda: self._created_before(state), what="the Batches API")
        if found is not None:
            return found
        batch = await self.client.call(
            lambda: self.client.openai.batches.create(
                input_file_id=state.input_file_id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={"source": "emoreason generate.py", "prompt_version": state.prompt_version},
            ),
            what=f"input file {state.input_file_id}",
        )
        return batch.id

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
            errors = (
                "; ".join(e.message or str(e.code) for e in (batch.errors.data or [])) if batch.errors else ""
            )
            raise FatalAPIError(
                f"batch {batch.id} failed validation ({errors or 'no details'}); nothing was charged"
            )
        return True

    def _show(self, batch: Batch) -> None:
        counts = batch.request_counts
        if counts is not None:
            self.progress.set_completed(counts.completed + counts.failed)

    async def _merge(self, batch: Batch, state: BatchState) -> None:
        pricing = Pricing.for_model(self.cfg, state.model, Mode.batch)
        seen: set[str] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.call(
                lambda file_id=file_id: self.client.openai.files.content(file_id), what=f"file {file_id}"
            )
            for line in content.text.splitlines():
                if line.strip():
                    key = await self._merge_line(json.loads(line), state, pricing)
                    seen.add(key)
        for key in state.items.keys() - seen:
            self.outcome.unresolved.setdefault(key, f"batch_{batch.status}")

    async def _merge_line(self, line: dict[str, Any], state: BatchState, pricing: Pricing | None) -> str:
        key = str(line.get("custom_id"))
        if key not in state.items:
            log.warning("batch line with unknown custom_id %s ignored", key)
            return key
        old = self.cache.entries.get(key)
        if old is not None and old.status == "ok":
            return key  # merged before an interruption
        item = state.item(key)
        response = line.get("response") or {}
        status = response.get("status_code")
        body = response.get("body") or {}
        if status == 200:
            result = ChatResult.from_completion(ChatCompletion.model_validate(body), pricing, state.model)
            entry = entry_from_result(item, result, state.prompt_version, "batch")
        else:
            error = body.get("error") or line.get("error") or {}
            code = error.get("code")
            if status == 400 and (code in ITEM_LEVEL_400_CODES or error.get("param") == "messages"):
                entry = rejected_entry(
                    item, "bad_request", str(error.get("message")), state.prompt_version, "batch"
                )
            else:
                self.outcome.unresolved[key] = f"batch_{code or status}"
                return key
        await self.cache.append(entry)
        self.outcome.stored.append(entry)
        return key
