"""Atomic writes: all or nothing, no temporary file left behind."""

import os
import stat

import pytest

from hwnas.fileio import write_atomic, write_text_atomic


def test_write_replaces_the_file_whole(tmp_path):
    path = write_text_atomic(tmp_path / "sub" / "a.json", "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(path.parent) == ["a.json"]


def test_failure_keeps_the_old_file_and_no_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "a.json", "old")

    def half_then_fail(handle):
        handle.write("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, half_then_fail)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.json"]
