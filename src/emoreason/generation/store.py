"""The generation cache: every finished call made durable the moment it returns, so nothing is paid twice.

One JSON line per finished call, appended and fsynced before the item counts as done. Appends that arrive
while an fsync runs are written together and made durable by the next single fsync (group commit, as
databases do for their logs): one fsync per group instead of one per call, and still no call counts as
done before an fsync that covers its line. A line is a reasoning
record (see :mod:`emoreason.data.reasoning`) plus ``key``, ``status`` (``ok`` or ``failed``), the failure
``reason``/``detail``, ``cost_usd`` and ``mode``. Only outcomes that would repeat are stored as failures
(truncated, refused, filtered, rejected); transient ones (429, 5xx, timeouts) are not stored at all, so a
rerun simply tries them again. The last line for a key wins, which is how ``retry_failed`` replaces a failure.

A crash can leave a torn last line; opening the cache drops it (that call was never acknowledged) and says
so. A defect anywhere else is corruption and an error naming file and line. An exclusive lock keeps two runs
from appending to one cache.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from emoreason.data.reasoning import ReasoningFormatError, ReasoningRecord
from emoreason.generation.errors import CacheError
from emoreason.generation.prompt import PromptTemplate
from emoreason.generation.response import encodable, normalise_usage
from emoreason.io import fsync_dir, iter_jsonl

log = logging.getLogger(__name__)

Status = Literal["ok", "failed"]


def cache_key(
    *, model: str, prompt: PromptTemplate, temperature: float | None, text: str, labels: tuple[str, ...]
) -> str:
    """The identity of one call: everything that shapes its answer, hashed.

    ``max_tokens`` is left out on purpose: it cannot change an answer that finished, it only truncates, and a
    truncated answer is stored as a failure. So raising it and rerunning with ``retry_failed=true`` redoes the
    truncated items only, instead of paying again for every finished one. ``temperature`` None (left out of
    the request, the server's default) keys differently from any number.
    """
    payload = {
        "model": model,
        "prompt": prompt.fingerprint,
        "prompt_version": prompt.version,
        "temperature": None if temperature is None else float(temperature),
        "text": text,
        "labels": list(labels),
    }
    encoded = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One stored outcome. For a failure, ``record.reasoning`` keeps whatever text came back (or "")."""

    key: str
    status: Status
    record: ReasoningRecord
    reason: str | None = None
    detail: str | None = None
    cost_usd: float | None = None
    mode: str = "online"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            **self.record.to_json(),
            "reason": self.reason,
            "detail": self.detail,
            "cost_usd": self.cost_usd,
            "mode": self.mode,
        }

    @classmethod
    def from_json(cls, obj: object, where: str) -> CacheEntry:
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("key"), str)
            or obj.get("status")
            not in (
                "ok",
                "failed",
            )
        ):
            raise ReasoningFormatError(f"{where}: not a cache entry (needs 'key' and 'status' ok|failed)")
        ok = obj["status"] == "ok"
        if isinstance(obj.get("usage"), dict):  # written before usage was normalised (total_tokens: null)
            usage = normalise_usage(obj["usage"])
            obj = {**obj, "usage": None if usage is None else usage.to_json()}
        return cls(
            key=obj["key"],
            status=obj["status"],
            record=ReasoningRecord.from_json(obj, where, require_reasoning=ok),
            reason=obj.get("reason"),
            detail=obj.get("detail"),
            cost_usd=obj.get("cost_usd"),
            mode=obj.get("mode", "online"),
        )


def read_entries(path: str | Path) -> dict[str, CacheEntry]:
    """The latest entry per key of a cache file, read-only (a torn last line is skipped, not repaired)."""
    entries: dict[str, CacheEntry] = {}
    try:
        for lineno, obj in iter_jsonl(path, error=ReasoningFormatError, tolerate_torn_tail=True):
            entry = CacheEntry.from_json(obj, f"{path}:{lineno}")
            entries[entry.key] = entry
    except ReasoningFormatError as exc:
        raise CacheError(
            f"generation cache is corrupt: {exc}. Fix or delete that line; moving the file aside instead "
            "means paying again for everything in it."
        ) from None
    return entries


def is_cache_file(path: str | Path) -> bool:
    """Whether ``path`` is a generation cache rather than a reasoning dataset (its first line has a key)."""
    with Path(path).open(encoding="utf-8") as handle:
        first = handle.readline()
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and "key" in obj and "status" in obj


class GenerationCache:
    """The cache file opened for appending: locked, repaired, loaded. Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, CacheEntry] = {}
        self.fsyncs = 0
        self._fd: int | None = None
        self._queued: list[tuple[CacheEntry, bytes, asyncio.Future[None]]] = []
        self._committing = False

    def __enter__(self) -> GenerationCache:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)  # the umask decides
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CacheError(
                f"{self.path} is in use by another generate.py run; wait for it to finish, or give this run "
                "its own cache with cache_path=..."
            ) from None
        self._fd = fd
        fsync_dir(self.path.parent)
        self._drop_torn_tail()
        self.entries = read_entries(self.path)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def _drop_torn_tail(self) -> None:
        """Cut an unterminated last line left by a crash, so the next append starts on a line of its own."""
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        start = data.rfind(b"\n") + 1
        try:
            json.loads(data[start:])
        except ValueError:
            assert self._fd is not None
            os.ftruncate(self._fd, start)
            log.warning(
                "%s: dropped a torn last line (%d bytes) left by an interrupted run; that item will be "
                "requested again",
                self.path,
                len(data) - start,
            )
        else:
            self._write(b"\n")

    def _write(self, data: bytes) -> None:
        assert self._fd is not None, "use GenerationCache as a context manager"
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    async def append(self, entry: CacheEntry) -> None:
        """Append one entry and return once it is on disk (the fsync runs off the event loop).

        The first caller writes and fsyncs every line queued so far, then again for lines queued meanwhile,
        until none is left; each caller returns when the fsync covering its line has returned.
        """
        line = encodable(json.dumps(entry.to_json(), ensure_ascii=False)) + "\n"
        done = asyncio.get_running_loop().create_future()
        self._queued.append((entry, line.encode("utf-8"), done))
        if not self._committing:
            self._committing = True
            try:
                while self._queued:
                    await self._commit()
            finally:
                self._committing = False
        await done

    async def _commit(self) -> None:
        group, self._queued = self._queued, []
        try:
            self._write(b"".join(line for _, line, _ in group))
            assert self._fd is not None
            await asyncio.shield(asyncio.to_thread(os.fsync, self._fd))
        except BaseException as exc:  # none of these lines is known to be durable: no caller counts it done
            for _, _, done in group + self._queued:
                if not done.done():
                    done.cancel() if isinstance(exc, asyncio.CancelledError) else done.set_exception(exc)
            self._queued = []
            raise
        self.fsyncs += 1
        for entry, _, done in group:
            self.entries[entry.key] = entry
            if not done.done():
                done.set_result(None)
