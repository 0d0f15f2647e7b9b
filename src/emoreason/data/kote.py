"""Read, validate and fetch KOTE's TSV files.

Format (KOTE's files at the pinned commit): UTF-8, no header, ``ID<TAB>text<TAB>label ids`` as
tab-separated CSV with standard quoting: a text holding ``"`` is stored wrapped in double quotes with inner
quotes doubled. Reading with quoting off would leave that escaping in 134 comments of val/test. Every defect
is an error naming file and line: a silently dropped row would change the test set.
"""

from __future__ import annotations

import csv
import hashlib
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from emoreason.io import atomic_write, read_text_lines
from emoreason.labels import NUM_LABELS

UPSTREAM_REPO = "searle-j/KOTE"
UPSTREAM_COMMIT = "cafd2c3f54a6f4b25ac74eaa02a2e76c3ef8c977"
UPSTREAM_URL = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/{{name}}"

SPLIT_SHA256: dict[str, str | None] = {
    "val": "c7d686ee1d63be7f57ec939f372ebdc4ada8eac1c9eeeeac207774976ab69a6e",
    "test": "8d8e11c5adf374f552cfbe6f2d7b9967e7335cc86c205beeefb6fd8c6ed9deb0",
    # No sha256 is published for train.tsv; its git blob id (below) pins it instead.
    "train": None,
}
# git's object ids at UPSTREAM_COMMIT (sha1 of ``blob <size>\0<content>``, as `git ls-tree` shows them): a
# pin that needs no stored copy of the file. Checked when no sha256 is pinned for the split.
SPLIT_GIT_BLOB: dict[str, str] = {"train": "6d61184517c834417796ca6a1bde99b52620a2c5"}
HF_EXPORT_SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow")
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


def parse_kote_fields(fields: list[str], path: Path | str, lineno: int) -> KoteRow:
    """Validate one row's already-unquoted fields; raise :class:`KoteFormatError` naming ``path:lineno``."""
    where = f"{path}:{lineno}"
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


def iter_kote_records(handle: Iterable[str], path: Path | str) -> Iterator[tuple[int, KoteRow]]:
    """``(line number, row)`` for each record of an open KOTE file (opened with ``newline=""``).

    Records are tab-separated CSV with standard quoting (RFC 4180 rules, tab as delimiter): a field holding
    ``"`` is wrapped in quotes with inner quotes doubled, as KOTE's own files store 68 val and 66 test texts.
    ``strict`` makes a malformed quoted field an error instead of a silently merged text; the line number
    is where the record starts, so a quoted field spanning lines is still found.
    """
    reader = csv.reader(handle, delimiter="\t", quotechar='"', doublequote=True, strict=True)
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise KoteFormatError(
                f"{path}:{reader.line_num}: malformed CSV quoting ({exc}); a text holding a double quote "
                'must be wrapped in double quotes with inner quotes doubled ("")'
            ) from None
        if not fields or fields == [""]:
            raise KoteFormatError(f"{path}:{start}: blank line")
        yield start, parse_kote_fields(fields, path, start)
        start = reader.line_num + 1


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


_Item = TypeVar("_Item", bound=_HasId)


def unique_by_id(
    numbered: Iterable[tuple[int, _Item]], path: Path | str, error: type[ValueError], noun: str = "ID"
) -> list[_Item]:
    """Items (each with an ``id``) in order; a repeated id or an empty file raises ``error`` naming lines.

    Shared by every line-oriented reader (KOTE TSV, reasoning JSONL), so both report defects alike.
    """
    items: list[_Item] = []
    first_line: dict[str, int] = {}
    for lineno, item in numbered:
        item_id = item.id
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
    """All rows of one KOTE file, validated; duplicate IDs are an error naming both lines.

    A UTF-8 byte-order mark is dropped (``utf-8-sig``): left in, it would become part of the first ID.
    Raises :class:`KoteFormatError` for a file that is not UTF-8, naming the file and how to convert it.
    """
    path = Path(path)
    if path.suffix in HF_EXPORT_SUFFIXES:
        raise KoteFormatError(hf_export_hint(path))
    lines = read_text_lines(path, KoteFormatError)
    return unique_by_id(iter_kote_records(lines, path), path, KoteFormatError)


def hf_export_hint(path: Path) -> str:
    """The error for a Hugging Face ``datasets`` export of KOTE, which this reader does not parse."""
    return (
        f"{path}: a Hugging Face datasets export (JSONL/Parquet with a list of label ids) is not read here; "
        "convert it to KOTE's TSV (ID<TAB>text<TAB>comma-separated label ids), e.g. with "
        "`datasets.load_dataset(...)[split].to_pandas()` and `to_csv(sep='\\t', header=False, index=False)` "
        "after joining the labels with ','"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """git's object id of the file's bytes: sha1 over ``b"blob <size>\\0"`` then the content."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None, git_blob: str | None = None) -> None:
    """Raise :class:`KoteFormatError` when ``path`` does not hash to ``expected``.

    With no sha256 pinned, ``git_blob`` (git's object id at the pinned commit) is checked instead; with
    neither, nothing is checked.
    """
    if expected is not None:
        kind, want, actual = "sha256", expected.lower(), sha256_of(path)
    elif git_blob is not None:
        kind, want, actual = "git blob id", git_blob.lower(), git_blob_sha1(path)
    else:
        return
    if actual != want:
        raise KoteFormatError(
            f"{path}: {kind} mismatch (expected {want}, got {actual}); the file is corrupt or another"
            " KOTE revision: delete it to re-download, or set data.source.verify_checksums=false to use it"
        )


def download_split(
    split: str, dest: Path, expected_sha256: str | None, timeout_s: float = 30.0, git_blob: str | None = None
) -> Path:
    """Fetch ``<split>.tsv`` from the pinned upstream commit into ``dest`` atomically, verifying it first.

    The bytes land in a temporary file beside ``dest`` and are renamed only after the checksum (or, for an
    unpinned file, a full parse) passes, so an interrupted or corrupt download never shadows a good file.
    """
    url = UPSTREAM_URL.format(name=f"{split}.tsv")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(dest, binary=True) as out:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
            out.flush()
            verify_sha256(Path(out.name), expected_sha256, git_blob)
            rows = read_kote_tsv(out.name)
            if expected_sha256 is None and git_blob is None and len(rows) != SPLIT_ROWS.get(split, len(rows)):
                raise KoteFormatError(f"{url}: expected {SPLIT_ROWS[split]} rows, got {len(rows)}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        fallback = " or choose data.source.split_scheme=val_holdout to train from val.tsv alone" * (
            split == "train"
        )
        raise KoteDownloadError(
            f"KOTE {split}.tsv is not at {dest} and could not be downloaded from {url} ({exc}). "
            f"Point the KOTE_DIR environment variable (or data.source.root) at a folder holding {split}.tsv"
            f"{fallback}."
        ) from exc
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
    git_blob = SPLIT_GIT_BLOB.get(split) if verify_checksums else None
    if path.exists():
        verify_sha256(path, expected, git_blob)
        return path
    exports = sorted(p for suffix in HF_EXPORT_SUFFIXES for p in Path(root).glob(f"{split}*{suffix}"))
    if exports:
        raise KoteFormatError(hf_export_hint(exports[0]))
    if not download:
        raise KoteDownloadError(
            f"KOTE {split}.tsv not found at {path} and data.source.download=false. Point KOTE_DIR (or "
            f"data.source.root) at a folder with {split}.tsv, or allow the download from "
            f"{UPSTREAM_URL.format(name=split + '.tsv')}."
        )
    return download_split(split, path, expected, git_blob=git_blob)
