"""db-backups against passing and violating fixtures: camelCase props as the engine
delivers them to the pack, for both self-hosted modes on Docker and for Swarm Patroni
members (their files are mounted Swarm configs), and not applicable on Azure."""

from __future__ import annotations

import base64

import pytest
from policy_harness import NOT_APPLICABLE, Res, check_stack

from policy.hastack_policies.backups import (
    DOCKER_BACKUP_SCHEDULER_COMPONENT,
    PGBACKREST_CONF,
    SWARM_BACKUP_SCHEDULER_COMPONENT,
)
from policy.hastack_policies.resources import (
    AZURE_PG_SERVER,
    DOCKER_CONTAINER,
    DOCKER_DATABASE_COMPONENT,
    DOCKER_PATRONI_DATABASE_COMPONENT,
    DOCKER_SERVICE,
    DOCKER_SERVICE_CONFIG,
    SWARM_PATRONI_DATABASE_COMPONENT,
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


NFS_OPTIONS = {"driverName": "local", "driverOptions": {"type": "nfs", "o": "addr=nfs.internal", "device": ":/exports/pg"}}


def swarm_config(name: str, text: str) -> Res:
    return Res(DOCKER_SERVICE_CONFIG, {"name": name, "data": base64.b64encode(text.encode()).decode()}, name=name)


def swarm_member(index=0, patroni_yml=PATRONI_YML, conf=CONF, repository_options=NFS_OPTIONS) -> list[Res]:
    """A Swarm Patroni member service and the configs it mounts, named as the components name them."""
    configs = {"/etc/patroni/patroni.yml": (f"db-{index}-patroni-abc", patroni_yml), PGBACKREST_CONF: ("backups-conf-abc", conf)}
    mounts = [{"type": "volume", "source": f"db-{index}-data", "target": "/var/lib/postgresql/data",
               "volumeOptions": {"driverName": "local"}},
              {"type": "volume", "source": "backups-repository", "target": "/var/lib/pgbackrest",
               "volumeOptions": repository_options}]
    service = Res(DOCKER_SERVICE, {"taskSpec": {"containerSpec": {
        "image": "registry/patroni@sha256:" + "ab" * 32,
        "configs": [{"configId": f"{name}-id", "configName": name, "fileName": path} for path, (name, _) in configs.items()],
        "mounts": mounts}}}, name=f"db-{index}", component=SWARM_PATRONI_DATABASE_COMPONENT)
    return [service, *(swarm_config(name, text) for name, text in configs.values())]


def swarm_scheduler(index=0) -> Res:
    return Res(DOCKER_SERVICE, {"taskSpec": {"containerSpec": {"commands": ["supercronic", "/etc/hastack/crontab"]}}},
               name=f"backup-db-{index}", component=SWARM_BACKUP_SCHEDULER_COMPONENT)


PASSING = {
    "manual": [node(), scheduler(), node("db-replica-0", command=[], uploads=[
        {"file": "/usr/local/bin/hastack-replica-bootstrap", "content": "exec postgres " + " ".join(ARCHIVE_FLAGS)}]),
        scheduler("db-replica-0")],
    "patroni": [patroni_member("db-0"), scheduler("db-0"), patroni_member("db-1"), scheduler("db-1")],
    "object-store": [node(conf=CONF.replace("repo1-type=posix", "repo1-type=s3"), volumes=[]), scheduler()],
    "swarm-nfs": [*swarm_member(0), swarm_scheduler(0), *swarm_member(1), swarm_scheduler(1)],
    "swarm-plugin": [*swarm_member(0, repository_options={"driverName": "rexray/efs"}), swarm_scheduler(0)],
    "swarm-object-store": [*swarm_member(0, conf=CONF.replace("repo1-type=posix", "repo1-type=azure")), swarm_scheduler(0)],
}


@pytest.mark.parametrize("case", PASSING, ids=list(PASSING))
def test_archiving_into_an_encrypted_repository_with_a_scheduler_passes(case):
    assert check_stack("db-backups", PASSING[case]) == []


VIOLATING = {
    "no-archiving": ([node(command=["postgres"]), scheduler()], "does not archive WAL"),
    "archiving-elsewhere": ([node(command=["postgres", "-c", "archive_mode=on", "-c", "archive_command=cp %p /x"]), scheduler()],
                            "does not archive WAL"),
    "unencrypted": ([node(conf=CONF.replace("aes-256-cbc", "none")), scheduler()], "unencrypted repository"),
    "no-config": ([node(conf=None), scheduler()], f"has no {PGBACKREST_CONF}"),
    "repository-on-no-volume": ([node(volumes=[]), scheduler()], "on no volume"),
    "no-scheduler": ([node()], "no backup scheduler"),
    "patroni-member-not-archiving": ([patroni_member("db-0"), scheduler("db-0"),
                                      node("db-1", command=[], component=DOCKER_PATRONI_DATABASE_COMPONENT), scheduler("db-1")],
                                     "'db-1' does not archive WAL"),
    "swarm-no-archiving": ([*swarm_member(0, patroni_yml="bootstrap: {}\n"), swarm_scheduler(0)], "'db-0' does not archive WAL"),
    "swarm-node-local-repository": ([*swarm_member(0, repository_options={"driverName": "local"}), swarm_scheduler(0)],
                                    "on a node-local volume backups-repository"),
    "swarm-unencrypted": ([*swarm_member(0, conf=CONF.replace("aes-256-cbc", "none")), swarm_scheduler(0)],
                          "unencrypted repository"),
    "swarm-no-scheduler": (swarm_member(0), "no backup scheduler"),
}


@pytest.mark.parametrize("case", VIOLATING, ids=list(VIOLATING))
def test_a_node_without_archiving_encryption_repository_or_schedule_violates(case):
    resources, expected = VIOLATING[case]
    messages = check_stack("db-backups", resources)
    assert len(messages) == 1 and expected in messages[0], messages


def test_managed_postgres_is_left_to_the_retention_and_geo_policies():
    server = Res(AZURE_PG_SERVER, {"backup": {"backupRetentionDays": 35, "geoRedundantBackup": "Enabled"}}, name="primary")
    assert check_stack("db-backups", [server]) == NOT_APPLICABLE
