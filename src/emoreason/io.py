"""The one place files are written: atomic replacement, durable renames, and JSON Lines reading.

Every output a user keeps (metrics.json, predictions, reasoning datasets, caches, batch state) goes through
:func:`atomic_write`, so a reader sees the old file or the complete new one, never half of it, and every
file gets the mode the user's umask gives (``tempfile.mkstemp`` would make it 0600, unreadable to colleagues
sharing a results folder or a cache). Layer: below ``data``; imports nothing of this package.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: str | Path, *, binary: bool = False, durable: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path`` in one rename.

    Text mode writes UTF-8 with ``\\n`` line ends; ``handle.name`` is the temporary path (to verify the bytes
    before they replace ``path``). The umask decides the file's mode, like any other output's. ``durable``
    fsyncs the file before the rename and the folder after it (a power cut then leaves the old or the new
    file); caches that can be rebuilt may skip it. On an exception the temporary file is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        # open() creates with 0o666 less the umask; "x" refuses to follow anything already at ``tmp``.
        handle = open(tmp, "xb") if binary else open(tmp, "x", encoding="utf-8", newline="\n")  # noqa: SIM115
        with handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        fsync_dir(path.parent)


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> Path:
    """Write ``text`` as UTF-8 through :func:`atomic_write`; returns ``path``."""
    with atomic_write(path, durable=durable) as handle:
        handle.write(text)
    return Path(path)


def write_json_atomic(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Pretty UTF-8 JSON (Korean kept readable) through :func:`atomic_write`."""
    return write_text_atomic(path, json.dumps(payload, ensure_ascii=False, indent=2) + "\n")


def write_jsonl_atomic(path: str | Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """One JSON object per line (UTF-8, Korean kept readable) through :func:`atomic_write`."""
    with atomic_write(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return Path(path)


def fsync_dir(directory: str | Path) -> None:
    """Make a rename or a new file in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text_lines(path: str | Path, error: type[Exception] = ValueError) -> list[str]:
    """The file's lines with their line ends, a UTF-8 byte-order mark dropped.

    A BOM left in would become part of the first record (an ID or a comment). A file that is not UTF-8
    raises ``error`` naming the file, the byte and how to convert it.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return handle.readlines()
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: not UTF-8 (byte {exc.start}: {exc.reason}); convert it first, e.g. "
            f"`iconv -f cp949 -t utf-8 {path} > {path.stem}.utf8{path.suffix}`"
        ) from None


def iter_jsonl(
    path: str | Path, *, error: type[Exception] = ValueError, tolerate_torn_tail: bool = False
) -> Iterator[tuple[int, object]]:
    """``(line number, decoded object)`` for each line of a JSON Lines file.

    Blank lines and undecodable JSON raise ``error`` naming ``path:line``. With ``tolerate_torn_tail``, an
    undecodable *last* line that lacks its newline (what a crash mid-append leaves) is skipped instead: it
    was never acknowledged as written.
    """
    lines = read_text_lines(path, error)
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            raise error(f"{path}:{lineno}: blank line")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if tolerate_torn_tail and lineno == len(lines) and not line.endswith("\n"):
                return
            raise error(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        yield lineno, obj
