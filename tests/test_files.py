"""The one atomic write and the one file hash."""

import hashlib
import os
import stat

import pytest

from estilo.files import sha256, write_atomic


def test_write_atomic_takes_bytes_text_or_a_writer(tmp_path):
    assert write_atomic(tmp_path / "a.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert write_atomic(tmp_path / "b.md", "é\n").read_text(encoding="utf-8") == "é\n"
    write_atomic(tmp_path / "c.txt", lambda fh: fh.write(b"written"))
    assert (tmp_path / "c.txt").read_bytes() == b"written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.md", "c.txt"]


def test_write_atomic_replaces_and_respects_the_umask(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    previous = os.umask(0o022)
    try:
        write_atomic(target, "new")
    finally:
        os.umask(previous)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")

    def fail(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_a_missing_folder_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "t.txt", "x")


def test_sha256_of_a_file_larger_than_a_chunk(tmp_path):
    data = os.urandom((1 << 20) + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert sha256(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(OSError):
        sha256(tmp_path / "none")
