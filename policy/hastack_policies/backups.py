"""Backups: every PostgreSQL can be restored to a point in time.

Self-hosted, `db-backups` checks what the Docker components declare for pgBackRest:
every PostgreSQL node archives WAL (archive_mode=on, archive_command pgbackrest
archive-push, in the node's command, its replica bootstrap script or its patroni.yml),
into a repository that is encrypted (repo1-cipher-type aes-256-cbc in the uploaded
pgbackrest.conf) and exists (a volume mounted where repo1-path is, or an object store),
and every node has a backup scheduler. On Azure, Flexible Server keeps the backups
itself; `db-backup-retention` and `db-geo-redundant-backup` (database.py) check its
`backup` properties, and both are mandatory in prod.
"""

from __future__ import annotations

import configparser

from pulumi_policy import EnforcementLevel

from .base import HastackStackPolicy
from .resources import DOCKER_CONTAINER, is_database_container, known_items, owning_component, uploaded_files

DOCKER_BACKUP_SCHEDULER_COMPONENT = "hastack:docker:BackupScheduler"
PGBACKREST_CONF = "/etc/pgbackrest/pgbackrest.conf"
SCHEDULER_PREFIX = "backup-"


def _archives(props) -> bool:
    """archive_mode on and archive_command pushing with pgBackRest, wherever the node sets them."""
    texts = [" ".join(str(arg) for arg in known_items(props.get("command"))), *uploaded_files(props).values()]
    return any(("archive_mode=on" in text or "archive_mode: 'on'" in text) and "archive-push" in text for text in texts)


def _repository_problem(props) -> str | None:
    """Why the node's pgBackRest repository is not an encrypted, existing one, or None."""
    text = uploaded_files(props).get(PGBACKREST_CONF)
    if not text:
        return f"uploads no {PGBACKREST_CONF}"
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(text)
    repo = conf["global"] if conf.has_section("global") else {}
    if repo.get("repo1-cipher-type", "none") == "none":
        return "has an unencrypted repository (repo1-cipher-type none)"
    if repo.get("repo1-type", "posix") == "posix":
        mounts = [str(v.get("containerPath")) for v in known_items(props.get("volumes")) if v.get("volumeName")]
        if not any(repo.get("repo1-path", "").startswith(mount.rstrip("/") + "/") for mount in mounts):
            return f"keeps its repository at {repo.get('repo1-path')} inside the container, on no volume"
    return None


def _check_backups(args, report, settings):
    nodes = [r for r in args.resources if r.resource_type == DOCKER_CONTAINER and is_database_container(r.urn)]
    if not nodes:
        args.not_applicable("no self-hosted PostgreSQL; managed backups are checked by db-backup-retention and db-geo-redundant-backup")
    schedulers = {r.name.removeprefix(SCHEDULER_PREFIX) for r in args.resources
                  if r.resource_type == DOCKER_CONTAINER and owning_component(r.urn) == DOCKER_BACKUP_SCHEDULER_COMPONENT}
    for node in nodes:
        if not _archives(node.props):
            report(f"PostgreSQL node '{node.name}' does not archive WAL with pgBackRest, so there is no point-in-time "
                   "recovery. Fix: set hastack:backups.enabled to true.", node.urn)
            continue
        problem = _repository_problem(node.props)
        if problem:
            report(f"PostgreSQL node '{node.name}' {problem}. Fix: keep hastack:backups.repository as the components render it.",
                   node.urn)
        if node.name not in schedulers:
            report(f"PostgreSQL node '{node.name}' has no backup scheduler beside it, so no base backups are taken. "
                   "Fix: set hastack:backups.enabled to true.", node.urn)


db_backups = HastackStackPolicy(
    "db-backups",
    "Self-hosted PostgreSQL archives WAL from every node into an encrypted pgBackRest repository on a volume or object store, "
    "with scheduled backups. Managed PostgreSQL: db-backup-retention and db-geo-redundant-backup.",
    check=_check_backups,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [db_backups]
