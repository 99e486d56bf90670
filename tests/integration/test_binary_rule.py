"""The rule every integration test relies on: a missing binary fails under CI, skips elsewhere."""

import pytest

from loopback.binaries import MissingBinary, find
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
