"""data/atomic.py: a reader sees the old file or the new one, never a half-written one."""
import pytest

from data.atomic import write_atomic


def test_writes_text_bytes_and_streams_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_atomic(target, "{}")
    assert target.read_text() == "{}"
    write_atomic(target, b"[]", durable=True)
    assert target.read_bytes() == b"[]"
    write_atomic(target, lambda handle: handle.write(b"streamed"))
    assert target.read_bytes() == b"streamed"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def broken(handle):
        handle.write(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
