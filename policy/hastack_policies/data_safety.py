"""Data safety: resources that hold data cannot be deleted by a stray `pulumi destroy`."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel

from .base import HastackResourcePolicy
from .resources import (
    AZURE_FILE_SHARE,
    AZURE_PG_DATABASE,
    AZURE_PG_SERVER,
    AZURE_STORAGE_ACCOUNT,
    DOCKER_SERVICE,
    DOCKER_VOLUME,
    is_read_replica,
    is_swarm_data_member,
)

# Where the data lives: Docker volumes (database data dirs, uploads), the Swarm services
# whose pinned task owns a node-local data volume (Patroni and etcd members), and their
# Azure counterparts (the server, and the app's database on it, which a replace would
# drop with every row). Containers, other services and gateways are rebuilt from code.
STATEFUL_TYPES = [DOCKER_VOLUME, DOCKER_SERVICE, AZURE_PG_SERVER, AZURE_PG_DATABASE, AZURE_STORAGE_ACCOUNT, AZURE_FILE_SHARE]


def _check_protected(args, report, settings):
    if args.resource_type == AZURE_PG_SERVER and is_read_replica(args.props):
        args.not_applicable("a read replica holds a copy the primary can rebuild")
    if args.resource_type == DOCKER_SERVICE and not is_swarm_data_member(args.urn):
        args.not_applicable("a stateless service; its tasks hold no data")
    if not args.opts.protect:
        report(
            f"'{args.name}' holds data but is not protected, so `pulumi destroy` or a replace would delete it. "
            "Fix: set hastack:protect to true for this stack (the default for a stack named prod)."
        )


stateful_resources_protected = HastackResourcePolicy(
    "stateful-resources-protected",
    "Resources that hold data (Docker volumes; Swarm Patroni and etcd member services; PostgreSQL primary servers and the app's database, storage accounts, file shares) are protected.",
    applies_to=STATEFUL_TYPES,
    check=_check_protected,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [stateful_resources_protected]
