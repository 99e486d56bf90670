"""pgBackRest's Azure repository type against a real Azure Blob-compatible server over TLS:
Azurite (npm) with a certificate from a test CA made by openssl (loopback/object_store.py).
The rendered pgbackrest.conf archives, backs up and restores through it, verifying the
server with the test CA; without that CA it refuses to talk at all."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from loopback.backup_drills import ENCRYPTED_MAGIC
from loopback.backups import LoopbackBackups, loopback_backups
from loopback.object_store import REQUIRED_BINARIES, LoopbackObjectStore, loopback_azurite
from tests.integration.conftest import require_binaries


@pytest.fixture(scope="module")
def azurite(pgbackrest_installed) -> Iterator[LoopbackObjectStore]:
    require_binaries(*REQUIRED_BINARIES)
    with loopback_azurite() as store:
        yield store


@pytest.fixture(scope="module")
def archived_to_blob(azurite) -> Iterator[LoopbackBackups]:
    """A primary archiving into the Blob container, with a first full backup."""
    with loopback_backups(repository=azurite.repository, secret_env=azurite.secret_env) as setup:
        setup.first_backup_log = setup.run_backup_job("ensure")
        yield setup


def test_archive_backup_and_restore_through_azure_blob_over_tls(azurite, archived_to_blob):
    setup = archived_to_blob
    assert "--type=full" in setup.first_backup_log
    assert "check command end: completed successfully" in setup.first_backup_log
    with setup.db.connect(setup.db.primary, "app") as conn:
        conn.execute("CREATE TABLE kept AS SELECT generate_series(1, 500) AS id")
    setup.wait_archived(setup.db.primary)
    run = setup.restore("latest")
    run.wait_writable()
    with setup.db.connect(run.cluster, "app") as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone()[0] == 500
    blobs = azurite.blob_names()
    assert any(name.startswith("pgbackrest/archive/app/") for name in blobs)
    assert any(name.startswith("pgbackrest/backup/app/") for name in blobs)
    # What the store holds is ciphertext (pgBackRest's repo1-cipher-type aes-256-cbc).
    sample = [name for name in blobs if name.endswith(".zst")][:5]
    assert sample and all(azurite.get_blob(name).startswith(ENCRYPTED_MAGIC) for name in sample)


def test_without_the_test_ca_pgbackrest_refuses_the_server(azurite, archived_to_blob):
    setup = archived_to_blob
    untrusted = dataclasses.replace(azurite.repository, ca_file=None)
    settings = setup.write_config(dataclasses.replace(setup.node_settings("untrusted", setup.root / "untrusted", 5432,
                                                                          setup.root), repository=untrusted))
    # A short io-timeout: pgBackRest retries a failed TLS handshake until it runs out.
    result = setup.pgbackrest(settings, "--io-timeout=3", "--output=json", "info", timeout_s=60)
    # info reports a repository it cannot read in its JSON, as monitoring sees it.
    stanza = json.loads(result.stdout)[0]
    assert stanza["status"]["code"] != 0
    assert "unable to get local issuer certificate" in result.stdout
