"""The private bridge network every container joins."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker


@dataclass(frozen=True)
class NetworkArgs:
    # Private CIDR (docker.subnet). pg_hba admits replication from this range only.
    subnet: str


class Network(pulumi.ComponentResource):
    """A user-defined bridge: containers find each other by alias through Docker's DNS.

    Nothing on it is published to the host except what a container asks for with
    `ports` (only the load balancer does); the database is reachable from here only.
    """

    name: pulumi.Output[str]
    subnet: str

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:Network", name, None, opts)
        bridge = docker.Network(
            f"{name}-bridge",
            driver="bridge",
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=args.subnet)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = bridge.name
        self.subnet = args.subnet
        self.register_outputs({"name": self.name, "subnet": self.subnet})
