import json
import os
import stat

import pytest

from emoreason.io import atomic_write, iter_jsonl, read_text_lines, write_json_atomic, write_jsonl_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_outputs_get_the_umask_mode_not_0600(tmp_path, umask_022):
    """Colleagues sharing a results folder or a cache must be able to read what a run wrote."""
    for path in (
        write_json_atomic(tmp_path / "metrics.json", {"a": 1}),
        write_jsonl_atomic(tmp_path / "p.jsonl", [{"a": 1}]),
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.umask(0o077)
    assert stat.S_IMODE(write_json_atomic(tmp_path / "private.json", {}).stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "m.json", {"old": True})
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("{half")
        raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text(encoding="utf-8")) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_jsonl_reading_drops_a_byte_order_mark_and_names_non_utf8(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes('\ufeff{"id": "45947"}\n'.encode())
    assert list(iter_jsonl(path)) == [(1, {"id": "45947"})]
    path.write_bytes("어이없네\n".encode("cp949"))
    with pytest.raises(ValueError, match=r"r\.jsonl: not UTF-8 .*iconv"):
        read_text_lines(path)
