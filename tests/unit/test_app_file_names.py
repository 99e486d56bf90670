"""The reference app's file-name allowlist and atomic writes (app/hastack_app/files.py)."""

from __future__ import annotations

import pytest

from app.hastack_app.files import MAX_NAME_LENGTH, UnsafeName, check_name, delete, probe, read, \
    write_atomically


@pytest.mark.parametrize("name", ["report.pdf", "a", "2026-11-23_backup.tar.gz", "x" * MAX_NAME_LENGTH,
                                  "-dash-first", "_under", "trailing.dot."])
def test_plain_names_are_allowed(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", [
    "", ".", "..", "../etc/passwd", "..\\windows", "a/b", "/etc/passwd", "C:\\boot.ini",
    "nul\x00byte", ".hidden", ".tmp-123", "x" * (MAX_NAME_LENGTH + 1), "with space", "new\nline",
    "caf\u00e9", "\u2024\u2024",  # one-dot leaders look like '..'
])
def test_names_that_are_not_plain_are_rejected(name):
    with pytest.raises(UnsafeName):
        check_name(name)


def test_write_replaces_the_file_and_leaves_no_temp_files(tmp_path):
    write_atomically(tmp_path, "doc.txt", b"first")
    write_atomically(tmp_path, "doc.txt", b"second")
    assert read(tmp_path, "doc.txt") == b"second"
    assert [path.name for path in tmp_path.iterdir()] == ["doc.txt"]


def test_read_and_delete_of_a_missing_file(tmp_path):
    assert read(tmp_path, "missing.txt") is None
    assert delete(tmp_path, "missing.txt") is False


def test_probe_cleans_up_and_fails_on_unusable_storage(tmp_path):
    probe(tmp_path, "app/0")  # a node id with a slash must not become a path
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        probe(tmp_path / "not-mounted", "app-0")
