"""Read, validate and fetch KOTE's TSV files.

Format (KOTE README): UTF-8, tab-separated, no header, no quoting: ``ID<TAB>text<TAB>label ids``. Texts hold
quotes and runs of spaces, so rows are split on tabs by hand rather than through ``csv`` dialect guessing.
Every defect is an error naming file and line: a silently dropped row would change the test set.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emoreason.labels import NUM_LABELS

UPSTREAM_REPO = "searle-j/KOTE"
UPSTREAM_COMMIT = "cafd2c3f54a6f4b25ac74eaa02a2e76c3ef8c977"
UPSTREAM_URL = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/{{name}}"

SPLIT_SHA256: dict[str, str | None] = {
    "val": "c7d686ee1d63be7f57ec939f372ebdc4ada8eac1c9eeeeac207774976ab69a6e",
    "test": "8d8e11c5adf374f552cfbe6f2d7b9967e7335cc86c205beeefb6fd8c6ed9deb0",
    # Not pinned: no copy of train.tsv was reachable when this table was written. A download is still
    # parsed in full and its row count checked; pin it with `data.source.sha256.train=<hex>` once known.
    "train": None,
}
SPLIT_ROWS = {"train": 40_000, "val": 5_000, "test": 5_000}


class KoteFormatError(ValueError):
    """A KOTE file that does not follow the format; the message names file and line."""


class KoteDownloadError(RuntimeError):
    """A split that is neither on disk nor downloadable; the message says where we looked."""


@dataclass(frozen=True, slots=True)
class KoteRow:
    """One labelled comment. ``labels`` are sorted, unique KOTE ids (0..43).

    ``reasoning`` is filled only when a reasoning dataset is joined in (``data=kote_reasoning``).
    """

    id: str
    text: str
    labels: tuple[int, ...]
    reasoning: str | None = None


def parse_kote_line(line: str, path: Path | str, lineno: int) -> KoteRow:
    """Parse one TSV line; raise :class:`KoteFormatError` naming ``path:lineno`` on any defect."""
    where = f"{path}:{lineno}"
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 3:
        raise KoteFormatError(
            f"{where}: expected 3 tab-separated fields (ID, text, label ids), found {len(fields)}"
        )
    row_id, text, label_field = fields
    if not row_id.strip():
        raise KoteFormatError(f"{where}: empty ID")
    if not text.strip():
        raise KoteFormatError(f"{where}: empty text for ID {row_id}")
    try:
        ids = [int(x) for x in label_field.split(",")]
    except ValueError:
        raise KoteFormatError(
            f"{where}: label ids must be comma-separated integers, got {label_field!r}"
        ) from None
    bad = [i for i in ids if not 0 <= i < NUM_LABELS]
    if bad:
        raise KoteFormatError(f"{where}: unknown label id(s) {bad}; KOTE ids run 0..{NUM_LABELS - 1}")
    return KoteRow(id=row_id.strip(), text=text, labels=tuple(sorted(set(ids))))


def unique_by_id(
    numbered: Iterable[tuple[int, Any]], path: Path | str, error: type[ValueError], noun: str = "ID"
) -> list[Any]:
    """Items (each with an ``id``) in order; a repeated id or an empty file raises ``error`` naming lines.

    Shared by every line-oriented reader (KOTE TSV, reasoning JSONL), so both report defects alike.
    """
    items: list[Any] = []
    first_line: dict[str, int] = {}
    for lineno, item in numbered:
        item_id = item.id  # type: ignore[attr-defined]
        if item_id in first_line:
            raise error(
                f"{path}:{lineno}: duplicate {noun} {item_id} (first seen on line {first_line[item_id]})"
            )
        first_line[item_id] = lineno
        items.append(item)
    if not items:
        raise error(f"{path}: file is empty")
    return items


def read_kote_tsv(path: str | Path) -> list[KoteRow]:
    """All rows of one KOTE file, validated; duplicate IDs are an error naming both lines."""
    path = Path(path)

    def numbered_rows(handle: Iterable[str]) -> Iterator[tuple[int, KoteRow]]:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                raise KoteFormatError(f"{path}:{lineno}: blank line")
            yield lineno, parse_kote_line(line, path, lineno)

    with path.open(encoding="utf-8", newline="") as handle:
        return unique_by_id(numbered_rows(handle), path, KoteFormatError)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> None:
    """Raise :class:`KoteFormatError` when ``path`` does not hash to ``expected`` (None: nothing pinned)."""
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected.lower():
        raise KoteFormatError(
            f"{path}: sha256 mismatch (expected {expected}, got {actual}); the file is corrupt or another"
            " KOTE revision: delete it to re-download, or set data.source.verify_checksums=false to use it"
        )


def download_split(split: str, dest: Path, expected_sha256: str | None, timeout_s: float = 30.0) -> Path:
    """Fetch ``<split>.tsv`` from the pinned upstream commit into ``dest`` atomically, verifying it first.

    The bytes land in a temporary file beside ``dest`` and are renamed only after the checksum (or, for an
    unpinned file, a full parse) passes, so an interrupted or corrupt download never shadows a good file.
    """
    url = UPSTREAM_URL.format(name=f"{split}.tsv")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{split}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        verify_sha256(tmp, expected_sha256)
        rows = read_kote_tsv(tmp)
        if expected_sha256 is None and len(rows) != SPLIT_ROWS.get(split, len(rows)):
            raise KoteFormatError(f"{url}: expected {SPLIT_ROWS[split]} rows, got {len(rows)}")
        os.replace(tmp, dest)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise KoteDownloadError(
            f"KOTE {split}.tsv is not at {dest} and could not be downloaded from {url} ({exc}). "
            f"Point the KOTE_DIR environment variable (or data.source.root) at a folder holding {split}.tsv, "
            "or choose data.source.split_scheme=val_holdout to train from val.tsv alone."
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def locate_split(
    root: str | Path,
    split: str,
    *,
    download: bool = True,
    verify_checksums: bool = True,
    sha256: dict[str, str | None] | None = None,
) -> Path:
    """Path of ``<root>/<split>.tsv``, downloading it when missing and allowed; checksum-verified."""
    pins = {**SPLIT_SHA256, **(sha256 or {})}
    path = Path(root) / f"{split}.tsv"
    expected = pins.get(split) if verify_checksums else None
    if path.exists():
        verify_sha256(path, expected)
        return path
    if not download:
        raise KoteDownloadError(
            f"KOTE {split}.tsv not found at {path} and data.source.download=false. Point KOTE_DIR (or "
            f"data.source.root) at a folder with {split}.tsv, or allow the download from "
            f"{UPSTREAM_URL.format(name=split + '.tsv')}."
        )
    return download_split(split, path, expected)
