"""pipeline.fileio.atomic_path: what a crash or a power loss can leave behind."""
import os
import stat

import pytest

from pipeline import fileio
from pipeline.fileio import atomic_path, write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_new_file_has_the_usual_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644  # not mkstemp's 0600


def test_data_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(fileio.os, "replace", lambda a, b: events.append(("replace", str(b))) or real_replace(a, b))
    path = tmp_path / "a.txt"
    write_text(path, "x")
    (_, synced_file), replaced, synced_dir = events
    assert synced_file.endswith(".tmp") and replaced == ("replace", str(path))
    assert synced_dir == ("fsync", str(tmp_path))
