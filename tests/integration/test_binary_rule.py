"""The rule every integration test relies on: a missing binary fails under CI, skips elsewhere."""

import subprocess
from pathlib import Path

import pytest

from loopback.binaries import MissingBinary, find, pinned_patroni_version
from tests.integration.conftest import require_binaries

ABSENT = "hastack-no-such-binary"


def test_missing_binary_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=ABSENT):
        require_binaries(ABSENT)


def test_missing_binary_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=ABSENT):
        require_binaries(ABSENT)


def test_missing_binary_names_the_package_to_install(monkeypatch, tmp_path):
    import loopback.binaries as binaries

    monkeypatch.setattr(binaries, "POSTGRES_BIN_DIR", tmp_path)
    monkeypatch.setattr(binaries.shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(MissingBinary, match=r"etcd is not installed; run: apt-get install -y etcd-server"):
        find("etcd")
    with pytest.raises(MissingBinary, match=r"apt-get install -y postgresql-15"):
        find("pg_basebackup")


def test_patroni_is_only_taken_from_the_pinned_venv(monkeypatch, tmp_path):
    """Debian's patroni 3.0.2 on PATH is never used: the tests run the image's version."""
    import loopback.binaries as binaries

    monkeypatch.setattr(binaries, "PATRONI_BIN_DIR", tmp_path)
    monkeypatch.setattr(binaries.shutil, "which", lambda *args, **kwargs: "/usr/bin/patroni")
    with pytest.raises(MissingBinary, match=r"patroni 3\.0\.\d+ is not installed in .*; run, as root: make patroni"):
        find("patroni")


def test_the_patroni_the_tests_run_is_the_version_the_image_pins():
    require_binaries("patroni", "patronictl")
    pinned = pinned_patroni_version()
    for command in ([find("patroni"), "--version"], [find("patronictl"), "version"]):
        printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
        assert printed[-1] == pinned, (command, printed)
    # patroni-demote-once.patch is applied: an offline demotion never runs in the AsyncExecutor.
    ha = subprocess.run([str(Path(find("patroni")).parent / "python"), "-c",
                         "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('patroni.ha').origin).read_text())"],
                        capture_output=True, text=True, check=True).stdout
    assert "try_run_async(msg, self.demote, ('offline',))" not in ha and "AsyncExecutor is busy, demoting" not in ha
