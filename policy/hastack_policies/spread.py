"""Swarm spread: a node's loss never takes every app replica, or two members of one
Patroni or etcd cluster, with it."""

from __future__ import annotations

import re
from collections import defaultdict

from pulumi_policy import EnforcementLevel

from .base import HastackStackPolicy
from .resources import DOCKER_SERVICE, is_app_container, is_swarm_data_member, owning_component, placement_constraints, service_replicas

# A constraint that pins a service's task to one node: by hostname or node id.
_PIN = re.compile(r"^\s*node\.(hostname|id)\s*==\s*(\S+)\s*$")


def _pinned_node(service) -> str | None:
    pins = [m.group(2) for m in map(_PIN.match, placement_constraints(service.props)) if m]
    return pins[0] if len(pins) == 1 else None


def _check_app_spread(service, report) -> None:
    replicas = service_replicas(service.props)
    per_node = ((service.props.get("taskSpec") or {}).get("placement") or {}).get("maxReplicas") or 0
    if replicas is not None and replicas >= 2 and not 1 <= per_node < replicas:
        report(
            f"Swarm service '{service.name}' runs {replicas} replicas with placement.maxReplicas {per_node or 'unset'}, "
            "so one node may hold all of them and its loss stops the app. "
            "Fix: set hastack:swarm.maxReplicasPerNode below app.replicas (1 puts each replica on its own node).",
            service.urn,
        )


def _check_members_spread(component: str, members: list, report) -> None:
    by_node = defaultdict(list)
    for member in members:
        node = _pinned_node(member)
        if node is None:
            report(
                f"Swarm service '{member.name}' ({component}) is not pinned to one node, so Swarm may start it next to "
                "another member, or move it away from its node-local data. "
                "Fix: give it one 'node.hostname == <node>' constraint (hastack:swarm.databaseNodes / etcdNodes).",
                member.urn,
            )
        else:
            by_node[node].append(member.name)
    for node, names in sorted(by_node.items()):
        if len(names) > 1:
            report(
                f"{', '.join(sorted(names))} ({component}) are all pinned to node '{node}', so its loss takes them together. "
                "Fix: name distinct nodes in hastack:swarm.databaseNodes / etcdNodes."
            )


def _check_spread(args, report, settings):
    services = [r for r in args.resources if r.resource_type == DOCKER_SERVICE]
    if not services:
        args.not_applicable("no Swarm services in this stack")
    for service in services:
        if is_app_container(service.urn):
            _check_app_spread(service, report)
    clusters = defaultdict(list)
    for service in services:
        if is_swarm_data_member(service.urn):
            clusters[owning_component(service.urn)].append(service)
    for component, members in sorted(clusters.items()):
        _check_members_spread(component, members, report)


swarm_spread = HastackStackPolicy(
    "swarm-spread",
    "On Swarm, app replicas are capped per node (placement.maxReplicas below replicas) and every Patroni and etcd member is pinned to a node of its own.",
    check=_check_spread,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [swarm_spread]
