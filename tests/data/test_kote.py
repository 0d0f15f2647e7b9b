import hashlib
import http.server
import subprocess
import threading
from pathlib import Path

import pytest

from emoreason.data import kote
from emoreason.data.kote import (
    KoteDownloadError,
    KoteFormatError,
    KoteRow,
    locate_split,
    read_kote_tsv,
    verify_sha256,
)
from tests.support.project import write_kote_tsv

GOOD = [("1", 'He said "hi"   there 😀', "0,6,6,22"), ("2", "좋다", "40")]


def test_reads_rows_with_quotes_spaces_emoji(tmp_path):
    path = write_kote_tsv(tmp_path / "x.tsv", GOOD)
    assert path.read_text(encoding="utf-8").startswith('1\t"He said ""hi""   there 😀"\t')  # as KOTE stores
    rows = read_kote_tsv(path)
    assert rows == [KoteRow("1", 'He said "hi"   there 😀', (0, 6, 22)), KoteRow("2", "좋다", (40,))]


def test_csv_quoting_is_undone_as_in_kote(tmp_path):
    """val.tsv ID 32024's shape: the whole field quoted, inner quotes doubled, a comma inside."""
    path = tmp_path / "val.tsv"
    first = '32024\t"저번주 ""강호동,은지원 코스"" 좋았다"\t0,2\n'
    path.write_text(first + '7\t"인용"으로 시작\t1\n', encoding="utf-8")
    with pytest.raises(KoteFormatError, match=r"val\.tsv:2: malformed CSV quoting"):
        read_kote_tsv(path)  # a quote closed mid-field is an error, never a silently merged text
    path.write_text(first + '7\t말 "인용" 중간\t1\n', encoding="utf-8")
    assert [r.text for r in read_kote_tsv(path)] == ['저번주 "강호동,은지원 코스" 좋았다', '말 "인용" 중간']


def test_byte_order_mark_is_not_part_of_the_first_id(tmp_path):
    path = tmp_path / "val.tsv"
    path.write_bytes("\ufeff45947\t좋다\t40\n".encode())
    assert read_kote_tsv(path)[0].id == "45947"


def test_non_utf8_file_names_file_and_conversion(tmp_path):
    path = tmp_path / "val.tsv"
    path.write_bytes("1\t어이가 없네\t23\n".encode("cp949"))
    with pytest.raises(KoteFormatError, match=r"val\.tsv: not UTF-8 .*iconv -f cp949"):
        read_kote_tsv(path)


def test_hugging_face_export_is_named_as_a_format_to_convert(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"ID": "1", "text": "좋다", "labels": [40]}\n', encoding="utf-8")
    with pytest.raises(KoteFormatError, match=r"train\.jsonl: a Hugging Face datasets export"):
        locate_split(tmp_path, "train", download=False)


def test_train_is_pinned_by_its_git_blob_id(tmp_path, monkeypatch):
    path = write_kote_tsv(tmp_path / "train.tsv", GOOD)
    blob = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
    assert kote.git_blob_sha1(path) == blob.stdout.strip()
    with pytest.raises(KoteFormatError, match="git blob id mismatch"):
        locate_split(tmp_path, "train")  # KOTE's pinned train.tsv blob, not this file
    monkeypatch.setitem(kote.SPLIT_GIT_BLOB, "train", blob.stdout.strip())
    assert locate_split(tmp_path, "train") == path
    assert locate_split(tmp_path, "train", verify_checksums=False) == path


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
        quoted = [row for row in rows if '"' in row.text]
        assert len(quoted) == {"val": 68, "test": 66}[split]  # KOTE's README counts
    val = {row.id: row.text for row in read_kote_tsv(kote_dir / "val.tsv")}
    assert val["32024"].count('"강호동,은지원 코스"') == 1


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
    with pytest.raises(KoteDownloadError) as excinfo:
        locate_split(tmp_path, "val")
    assert "KOTE_DIR" in str(excinfo.value) and "val_holdout" not in str(excinfo.value)  # it needs val.tsv


def test_no_download_when_disabled(tmp_path):
    with pytest.raises(KoteDownloadError, match=r"data\.source\.download=false"):
        locate_split(tmp_path, "val", download=False)
