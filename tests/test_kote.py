import hashlib
import http.server
import threading
from pathlib import Path

import pytest
from conftest import write_kote_tsv

from emoreason.data import kote
from emoreason.data.kote import (
    KoteDownloadError,
    KoteFormatError,
    KoteRow,
    locate_split,
    read_kote_tsv,
    verify_sha256,
)

GOOD = [("1", 'He said "hi"   there 😀', "0,6,6,22"), ("2", "좋다", "40")]


def test_reads_rows_with_quotes_spaces_emoji(tmp_path):
    rows = read_kote_tsv(write_kote_tsv(tmp_path / "x.tsv", GOOD))
    assert rows == [KoteRow("1", 'He said "hi"   there 😀', (0, 6, 22)), KoteRow("2", "좋다", (40,))]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1\tonly two fields\n", "x.tsv:1: expected 3 tab-separated fields"),
        ("1\tok\t0\n2\ttext\t0\textra\n", "x.tsv:2: expected 3 tab-separated fields"),
        ("1\ttext\t44\n", "x.tsv:1: unknown label id(s) [44]"),
        ("1\ttext\t-1\n", "x.tsv:1: unknown label id(s) [-1]"),
        ("1\ttext\tjoy\n", "x.tsv:1: label ids must be comma-separated integers"),
        ("1\ttext\t\n", "x.tsv:1: label ids must be comma-separated integers"),
        ("1\t   \t3\n", "x.tsv:1: empty text for ID 1"),
        ("\ttext\t3\n", "x.tsv:1: empty ID"),
        ("1\ta\t3\n2\tb\t4\n1\tc\t5\n", "x.tsv:3: duplicate ID 1 (first seen on line 1)"),
        ("1\ta\t3\n\n2\tb\t4\n", "x.tsv:2: blank line"),
        ("", "x.tsv: file is empty"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "x.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KoteFormatError) as excinfo:
        read_kote_tsv(path)
    assert message in str(excinfo.value)


def test_checksum_mismatch_is_an_error(tmp_path):
    path = write_kote_tsv(tmp_path / "val.tsv", GOOD)
    with pytest.raises(KoteFormatError, match="sha256 mismatch"):
        verify_sha256(path, "0" * 64)
    verify_sha256(path, hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.mark.shared_data
def test_shared_copy_matches_pinned_checksums_and_sizes(kote_dir):
    for split in ("val", "test"):
        rows = read_kote_tsv(locate_split(kote_dir, split, download=False))
        assert len(rows) == kote.SPLIT_ROWS[split]
        assert all(row.labels for row in rows)


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    """A local HTTP server standing in for the pinned upstream commit."""
    served = tmp_path / "upstream"
    served.mkdir()
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(kote, "UPSTREAM_URL", f"http://127.0.0.1:{server.server_port}/{{name}}")
    yield served
    server.shutdown()


def test_missing_split_is_downloaded_and_verified(tmp_path, upstream):
    source = write_kote_tsv(upstream / "val.tsv", GOOD)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    root = tmp_path / "data"
    path = locate_split(root, "val", sha256={"val": digest})
    assert path == root / "val.tsv" and path.read_bytes() == source.read_bytes()
    assert [p.name for p in root.iterdir()] == ["val.tsv"]  # no temporary file left behind


def test_corrupt_download_leaves_nothing_behind(tmp_path, upstream):
    write_kote_tsv(upstream / "val.tsv", GOOD)
    root = tmp_path / "data"
    with pytest.raises(KoteFormatError, match="sha256 mismatch"):
        locate_split(root, "val", sha256={"val": "f" * 64})
    assert list(root.iterdir()) == []


def test_offline_error_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(kote, "UPSTREAM_URL", "http://127.0.0.1:9/{name}")  # discard port: refused
    with pytest.raises(KoteDownloadError) as excinfo:
        locate_split(tmp_path, "train")
    message = str(excinfo.value)
    assert str(Path(tmp_path) / "train.tsv") in message and "KOTE_DIR" in message and "val_holdout" in message


def test_no_download_when_disabled(tmp_path):
    with pytest.raises(KoteDownloadError, match=r"data\.source\.download=false"):
        locate_split(tmp_path, "val", download=False)
