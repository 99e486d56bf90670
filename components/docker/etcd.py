"""etcd: the distributed store Patroni keeps its leader lock and cluster state in.

Three members, so the cluster keeps its quorum (2 of 3) through the loss of any one;
with fewer, losing the store stops Patroni from renewing the leader lock, and the
leader demotes itself to read-only. Each member has its own data volume and joins the
others through a static `--initial-cluster` list of network aliases (`etcd-0`, ...).
Nothing is published on the host: only the Patroni members talk to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import ETCD_IMAGE
from components.docker.common import data_node, pulled_image
from components.render.etcd import EtcdClusterSettings, EtcdMember, etcd_member_flags

# The official image is distroless (no shell); its binaries live here.
ETCD_BIN_DIR = "/usr/local/bin"
# Quorum is a majority: three members survive one loss.
MEMBERS = 3
# Where each member's data volume is mounted; etcd keeps its WAL and snapshots there.
DATA_DIR = "/var/lib/etcd"
# A member with data rejoins at once; a new one waits for a quorum to form.
HEALTHY_TIMEOUT_S = 120
# etcd finishes in-flight requests and hands over leadership on SIGTERM.
STOP_GRACE_S = 30


@dataclass(frozen=True)
class EtcdArgs:
    network_name: pulumi.Input[str]
    # Protect (and retain) the data volumes: they hold which Patroni member leads.
    protect: bool


class Etcd(pulumi.ComponentResource):
    """A three-member etcd cluster on the private network, members `<name>-0` ... `<name>-2`."""

    client_endpoints: list[str]
    node_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: EtcdArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:Etcd", name, None, opts)
        image = pulled_image(f"{name}-image", ETCD_IMAGE, self)
        # The token keeps this cluster's bootstrap apart from any other etcd on the network.
        cluster = EtcdClusterSettings(
            members=tuple(EtcdMember(name=f"{name}-{index}", host=f"{name}-{index}") for index in range(MEMBERS)),
            cluster_token=f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}",
        )
        self.client_endpoints = list(cluster.client_endpoints)
        members: list[docker.Container] = []
        for member in cluster.members:
            members.append(
                data_node(
                    member.name,
                    parent=self,
                    protect=args.protect,
                    network_name=args.network_name,
                    volume_path=DATA_DIR,
                    # Against the member itself: healthy once it serves reads through a quorum.
                    health_test=[f"{ETCD_BIN_DIR}/etcdctl", f"--endpoints=http://127.0.0.1:{member.client_port}", "endpoint", "health"],
                    healthy_timeout_s=HEALTHY_TIMEOUT_S,
                    stop_grace_s=STOP_GRACE_S,
                    # No chain between members (unlike the app replicas): a first member
                    # is healthy only once a quorum has formed, so waiting for it before
                    # starting the next would never end.
                    image=image.image_id,
                    command=[f"{ETCD_BIN_DIR}/etcd", *etcd_member_flags(cluster, member.name, DATA_DIR)],
                )
            )
        self.node_names = pulumi.Output.all(*[member.name for member in members])
        self.register_outputs({"clientEndpoints": self.client_endpoints, "nodeNames": self.node_names})
