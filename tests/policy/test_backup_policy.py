"""db-backups against passing and violating fixtures: camelCase props as the engine
delivers them to the pack, for both self-hosted modes, and not applicable on Azure."""

from __future__ import annotations

import pytest
from policy_harness import NOT_APPLICABLE, Res, check_stack

from policy.hastack_policies.backups import DOCKER_BACKUP_SCHEDULER_COMPONENT, PGBACKREST_CONF
from policy.hastack_policies.resources import (
    AZURE_PG_SERVER,
    DOCKER_CONTAINER,
    DOCKER_DATABASE_COMPONENT,
    DOCKER_PATRONI_DATABASE_COMPONENT,
)

ARCHIVE_FLAGS = ["-c", "archive_mode=on", "-c", "archive_command=pgbackrest --config=/etc/pgbackrest/pgbackrest.conf "
                 "--stanza=db archive-push %p", "-c", "archive_timeout=60s"]
CONF = ("[global]\nrepo1-type=posix\nrepo1-path=/var/lib/pgbackrest/pgbackrest\nrepo1-cipher-type=aes-256-cbc\n"
        "[db]\npg1-path=/var/lib/postgresql/data\n")
REPO_MOUNT = {"volumeName": "backups-repository", "containerPath": "/var/lib/pgbackrest"}


def node(name="db-primary", command=None, conf=CONF, volumes=None, component=DOCKER_DATABASE_COMPONENT, uploads=()):
    props = {
        "image": "sha256:" + "ab" * 32,
        "command": ["postgres", *ARCHIVE_FLAGS] if command is None else command,
        "uploads": [*([{"file": PGBACKREST_CONF, "content": conf}] if conf else []), *uploads],
        "volumes": [{"volumeName": f"{name}-data", "containerPath": "/var/lib/postgresql/data"},
                    *([REPO_MOUNT] if volumes is None else volumes)],
    }
    return Res(DOCKER_CONTAINER, props, name=name, component=component)


def scheduler(for_node="db-primary"):
    return Res(DOCKER_CONTAINER, {"image": "sha256:" + "ab" * 32, "entrypoints": ["supercronic", "/etc/hastack/crontab"]},
               name=f"backup-{for_node}", component=DOCKER_BACKUP_SCHEDULER_COMPONENT)


PATRONI_YML = ("bootstrap:\n  dcs:\n    postgresql:\n      parameters:\n        archive_mode: 'on'\n"
               "        archive_command: pgbackrest --stanza=db archive-push %p\n")


def patroni_member(name="db-0", **changes):
    return node(name, command=[], component=DOCKER_PATRONI_DATABASE_COMPONENT,
                uploads=[{"file": "/etc/patroni/patroni.yml", "content": PATRONI_YML}], **changes)


PASSING = {
    "manual": [node(), scheduler(), node("db-replica-0", command=[], uploads=[
        {"file": "/usr/local/bin/hastack-replica-bootstrap", "content": "exec postgres " + " ".join(ARCHIVE_FLAGS)}]),
        scheduler("db-replica-0")],
    "patroni": [patroni_member("db-0"), scheduler("db-0"), patroni_member("db-1"), scheduler("db-1")],
    "object-store": [node(conf=CONF.replace("repo1-type=posix", "repo1-type=s3"), volumes=[]), scheduler()],
}


@pytest.mark.parametrize("case", PASSING, ids=list(PASSING))
def test_archiving_into_an_encrypted_repository_with_a_scheduler_passes(case):
    assert check_stack("db-backups", PASSING[case]) == []


VIOLATING = {
    "no-archiving": ([node(command=["postgres"]), scheduler()], "does not archive WAL"),
    "archiving-elsewhere": ([node(command=["postgres", "-c", "archive_mode=on", "-c", "archive_command=cp %p /x"]), scheduler()],
                            "does not archive WAL"),
    "unencrypted": ([node(conf=CONF.replace("aes-256-cbc", "none")), scheduler()], "unencrypted repository"),
    "no-config": ([node(conf=None), scheduler()], f"uploads no {PGBACKREST_CONF}"),
    "repository-on-no-volume": ([node(volumes=[]), scheduler()], "on no volume"),
    "no-scheduler": ([node()], "no backup scheduler"),
    "patroni-member-not-archiving": ([patroni_member("db-0"), scheduler("db-0"),
                                      node("db-1", command=[], component=DOCKER_PATRONI_DATABASE_COMPONENT), scheduler("db-1")],
                                     "'db-1' does not archive WAL"),
}


@pytest.mark.parametrize("case", VIOLATING, ids=list(VIOLATING))
def test_a_node_without_archiving_encryption_repository_or_schedule_violates(case):
    resources, expected = VIOLATING[case]
    messages = check_stack("db-backups", resources)
    assert len(messages) == 1 and expected in messages[0], messages


def test_managed_postgres_is_left_to_the_retention_and_geo_policies():
    server = Res(AZURE_PG_SERVER, {"backup": {"backupRetentionDays": 35, "geoRedundantBackup": "Enabled"}}, name="primary")
    assert check_stack("db-backups", [server]) == NOT_APPLICABLE
