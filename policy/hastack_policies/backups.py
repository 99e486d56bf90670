"""Backups: every PostgreSQL can be restored to a point in time.

Self-hosted, `db-backups` checks what the Docker and Swarm components declare for
pgBackRest: every PostgreSQL node (a container, or a Swarm Patroni member service)
archives WAL (archive_mode=on, archive_command pgbackrest archive-push, in the node's
command, its replica bootstrap script or its patroni.yml), into a repository that is
encrypted (repo1-cipher-type aes-256-cbc in the uploaded or mounted pgbackrest.conf) and
exists (a volume mounted where repo1-path is, or an object store; on Swarm a volume that
is shared, NFS or a named driver, never a node's own disk), and every node has a backup
scheduler. On Azure, Flexible Server keeps the backups
itself; `db-backup-retention` and `db-geo-redundant-backup` (database.py) check its
`backup` properties, and both are mandatory in prod.
"""

from __future__ import annotations

import configparser

from pulumi_policy import EnforcementLevel

from .base import HastackStackPolicy
from .resources import (
    DOCKER_CONTAINER,
    DOCKER_SERVICE,
    DOCKER_SERVICE_CONFIG,
    container_spec,
    is_database_container,
    known_items,
    mounted_configs,
    owning_component,
    swarm_config_text,
    uploaded_files,
)

DOCKER_BACKUP_SCHEDULER_COMPONENT = "hastack:docker:BackupScheduler"
SWARM_BACKUP_SCHEDULER_COMPONENT = "hastack:swarm:BackupScheduler"
PGBACKREST_CONF = "/etc/pgbackrest/pgbackrest.conf"
SCHEDULER_PREFIX = "backup-"


def _archives(command: list[str], files: dict[str, str]) -> bool:
    """archive_mode on and archive_command pushing with pgBackRest, wherever the node sets them."""
    texts = [" ".join(command), *files.values()]
    return any(("archive_mode=on" in text or "archive_mode: 'on'" in text) and "archive-push" in text for text in texts)


def _docker_mounts(props) -> list[tuple[str, str | None]]:
    """A container's volumes: (path, None); any volume of one engine is where it says."""
    return [(str(v.get("containerPath")), None) for v in known_items(props.get("volumes")) if v.get("volumeName")]


def _swarm_mounts(props) -> list[tuple[str, str | None]]:
    """A service's volume mounts: (path, why it is node-local, or None if shared). A Swarm
    task runs on any node of its constraint, and the `local` driver without NFS options is
    that node's own disk."""
    mounts = []
    for mount in known_items(container_spec(props).get("mounts")):
        if mount.get("type") != "volume":
            continue
        options = mount.get("volumeOptions") or {}
        driver = options.get("driverName") or "local"
        nfs = str((options.get("driverOptions") or {}).get("type", "")).startswith("nfs")
        local = None if driver != "local" or nfs else f"node-local volume {mount.get('source')} (lost with its node)"
        mounts.append((str(mount.get("target")), local))
    return mounts


def _repository_problem(files: dict[str, str], mounts: list[tuple[str, str | None]]) -> str | None:
    """Why the node's pgBackRest repository is not an encrypted, existing one, or None."""
    text = files.get(PGBACKREST_CONF)
    if not text:
        return f"has no {PGBACKREST_CONF}"
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(text)
    repo = conf["global"] if conf.has_section("global") else {}
    if repo.get("repo1-cipher-type", "none") == "none":
        return "has an unencrypted repository (repo1-cipher-type none)"
    if repo.get("repo1-type", "posix") == "posix":
        path = repo.get("repo1-path", "")
        holding = [local for mount, local in mounts if path.startswith(mount.rstrip("/") + "/")]
        if not holding:
            return f"keeps its repository at {path} inside the container, on no volume"
        if holding[0] is not None:
            return f"keeps its repository at {path} on a {holding[0]}"
    return None


def _nodes(args) -> list[tuple[object, list[str], dict[str, str], list[tuple[str, str | None]]]]:
    """Every PostgreSQL node: (resource, command, files, mounts)."""
    texts = {str(r.props.get("name")): swarm_config_text(r.props) for r in args.resources
             if r.resource_type == DOCKER_SERVICE_CONFIG and isinstance(r.props.get("name"), str)}
    nodes = []
    for r in args.resources:
        if not is_database_container(r.urn):
            continue
        if r.resource_type == DOCKER_CONTAINER:
            nodes.append((r, [str(arg) for arg in known_items(r.props.get("command"))], uploaded_files(r.props),
                          _docker_mounts(r.props)))
        elif r.resource_type == DOCKER_SERVICE:
            nodes.append((r, [], mounted_configs(r.props, texts), _swarm_mounts(r.props)))
    return nodes


def _check_backups(args, report, settings):
    nodes = _nodes(args)
    if not nodes:
        args.not_applicable("no self-hosted PostgreSQL; managed backups are checked by db-backup-retention and db-geo-redundant-backup")
    schedulers = {r.name.removeprefix(SCHEDULER_PREFIX) for r in args.resources
                  if r.resource_type in (DOCKER_CONTAINER, DOCKER_SERVICE)
                  and owning_component(r.urn) in (DOCKER_BACKUP_SCHEDULER_COMPONENT, SWARM_BACKUP_SCHEDULER_COMPONENT)}
    for node, command, files, mounts in nodes:
        if not _archives(command, files):
            report(f"PostgreSQL node '{node.name}' does not archive WAL with pgBackRest, so there is no point-in-time "
                   "recovery. Fix: set hastack:backups.enabled to true.", node.urn)
            continue
        problem = _repository_problem(files, mounts)
        if problem:
            report(f"PostgreSQL node '{node.name}' {problem}. Fix: keep hastack:backups.repository as the components render it.",
                   node.urn)
        if node.name not in schedulers:
            report(f"PostgreSQL node '{node.name}' has no backup scheduler beside it, so no base backups are taken. "
                   "Fix: set hastack:backups.enabled to true.", node.urn)


db_backups = HastackStackPolicy(
    "db-backups",
    "Self-hosted PostgreSQL archives WAL from every node into an encrypted pgBackRest repository on a volume (shared, on Swarm) "
    "or object store, "
    "with scheduled backups. Managed PostgreSQL: db-backup-retention and db-geo-redundant-backup.",
    check=_check_backups,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [db_backups]
