"""The two overlay networks a Swarm stack spans its nodes with."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker


@dataclass(frozen=True)
class NetworksArgs:
    # swarm.appSubnet and swarm.dataSubnet.
    app_subnet: str
    data_subnet: str


class Networks(pulumi.ComponentResource):
    """`app`: the LB and the app replicas. `data`: the app replicas, Patroni and etcd,
    with IPsec encryption between nodes (`encrypted`), since passwords, replication and
    every query cross the hosts' own network. The LB is not on `data`, so nothing
    published on a node reaches the database."""

    app: docker.Network
    data: docker.Network
    data_subnet: str

    def __init__(self, name: str, args: NetworksArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:Networks", name, None, opts)
        self.app = docker.Network(
            f"{name}-app",
            driver="overlay",
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=args.app_subnet)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.data = docker.Network(
            f"{name}-data",
            driver="overlay",
            # Swarm's overlay encryption: "--opt encrypted" (docs.docker.com/engine/network/drivers/overlay/).
            options={"encrypted": "true"},
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=args.data_subnet)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.data_subnet = args.data_subnet
        self.register_outputs({"appNetworkId": self.app.id, "dataNetworkId": self.data.id})
