"""etcd for Patroni: three members, each a service pinned to its own node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import ETCD_IMAGE
from components.render.etcd import EtcdClusterSettings, EtcdMember, etcd_member_flags
from components.swarm.common import healthcheck, node_local_volume, pinned_by_digest, pinned_member, service_name

# The official image is distroless (no shell); its binaries live here.
ETCD_BIN_DIR = "/usr/local/bin"
DATA_DIR = "/var/lib/etcd"
# etcd finishes in-flight requests and hands over leadership on SIGTERM.
STOP_GRACE_S = 30
# Raft timing for members on a LAN, half etcd's defaults (100 / 1000 ms), within its
# tuning guide (heartbeat about the round trip, election >= 10 heartbeats,
# https://etcd.io/docs/v3.4/tuning/#time-parameters). It bounds a failover: when the etcd
# leader's machine is lost, the new etcd leader comes after an election timeout or two and
# then extends every lease by one election timeout (lessor.Promote), so Patroni's leader
# key outlives its machine by ttl + up to three election timeouts.
HEARTBEAT_INTERVAL_MS = 50
ELECTION_TIMEOUT_MS = 500


@dataclass(frozen=True)
class EtcdArgs:
    # swarm.etcdNodes (or the first three nodes): one member on each.
    nodes: Sequence[str]
    networks: Sequence[docker.Network]
    protect: bool


class Etcd(pulumi.ComponentResource):
    """Members `<name>-0`..`<name>-2`; each answers under its own service name (dnsrr: the
    name resolves to the member's task, not a VIP that could hide which member it is)."""

    client_endpoints: list[str]
    client_urls: list[str]
    service_names: list[str]

    def __init__(self, name: str, args: EtcdArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:Etcd", name, None, opts)
        image = pinned_by_digest(f"{name}-image", ETCD_IMAGE, self)
        self.service_names = [service_name(f"{name}-{index}") for index in range(len(args.nodes))]
        cluster = EtcdClusterSettings(
            members=tuple(EtcdMember(name=member, host=member) for member in self.service_names),
            cluster_token=service_name(name),
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            election_timeout_ms=ELECTION_TIMEOUT_MS,
        )
        self.client_endpoints = list(cluster.client_endpoints)
        self.client_urls = [member.client_url for member in cluster.members]
        for index, (member, node) in enumerate(zip(self.service_names, args.nodes)):
            pinned_member(
                f"{name}-{index}",
                name=member,
                node=node,
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=image,
                    commands=[f"{ETCD_BIN_DIR}/etcd", *etcd_member_flags(cluster, member, DATA_DIR)],
                    hostname=member,
                    mounts=[node_local_volume(f"{member}-data", DATA_DIR)],
                    # Liveness only: `endpoint status` is answered by the member itself,
                    # while `endpoint health` needs a quorum, and a lost quorum must not
                    # make Swarm kill the members that could restore it.
                    healthcheck=healthcheck([f"{ETCD_BIN_DIR}/etcdctl", "--endpoints=http://127.0.0.1:2379", "endpoint", "status"],
                                            interval_s=5, timeout_s=3, retries=5, start_period_s=60),
                    stop_grace_period=f"{STOP_GRACE_S}s",
                ),
                networks=args.networks,
                restart_delay_s=2,
                parent=self,
                protect=args.protect,
            )
        self.register_outputs({"clientEndpoints": self.client_endpoints, "serviceNames": self.service_names})
