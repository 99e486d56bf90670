"""The private network every other Azure piece lives in.

One VNet, three subnets (each service needs its own: Container Apps and PostgreSQL
take delegated subnets, Application Gateway an exclusive one) and the private DNS
zone that resolves the PostgreSQL servers inside the VNet.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.network as network
import pulumi_azure_native.privatedns as privatedns
import pulumi_azure_native.resources as resources


@dataclass(frozen=True)
class SubnetPlan:
    """Address ranges carved from the VNet, fixed so a change of one never moves another."""

    apps: str
    database: str
    gateway: str


def plan_subnets(vnet_cidr: str) -> SubnetPlan:
    """Split a /20-or-larger VNet: a /23 for Container Apps (room for the environment to
    scale its nodes), then a /24 each for PostgreSQL and the Application Gateway."""
    vnet = ipaddress.ip_network(vnet_cidr)
    slash24 = list(vnet.subnets(new_prefix=24))
    apps = next(vnet.subnets(new_prefix=23))
    return SubnetPlan(apps=str(apps), database=str(slash24[2]), gateway=str(slash24[3]))


@dataclass(frozen=True)
class NetworkArgs:
    location: str
    vnet_cidr: str
    # Deploy into this existing resource group; None creates one.
    existing_resource_group: str | None = None


class Network(pulumi.ComponentResource):
    """Resource group, VNet, service subnets and the PostgreSQL private DNS zone."""

    resource_group_name: pulumi.Output[str]
    vnet_id: pulumi.Output[str]
    apps_subnet_id: pulumi.Output[str]
    database_subnet_id: pulumi.Output[str]
    gateway_subnet_id: pulumi.Output[str]
    postgres_dns_zone_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:azure:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if args.existing_resource_group:
            self.resource_group_name = pulumi.Output.from_input(args.existing_resource_group)
        else:
            group = resources.ResourceGroup(f"{name}-rg", location=args.location, opts=child)
            self.resource_group_name = group.name

        vnet = network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=self.resource_group_name,
            location=args.location,
            address_space=network.AddressSpaceArgs(address_prefixes=[args.vnet_cidr]),
            opts=child,
        )
        self.vnet_id = vnet.id

        plan = plan_subnets(args.vnet_cidr)
        # Subnets of one VNet are written one after another: Azure rejects concurrent
        # subnet writes with AnotherOperationInProgress.
        apps_subnet = network.Subnet(
            f"{name}-apps-subnet",
            resource_group_name=self.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=plan.apps,
            delegations=[network.DelegationArgs(name="container-apps", service_name="Microsoft.App/environments")],
            # The storage account admits only this subnet (service endpoint + firewall rule).
            service_endpoints=[network.ServiceEndpointPropertiesFormatArgs(service="Microsoft.Storage")],
            opts=child,
        )
        database_subnet = network.Subnet(
            f"{name}-database-subnet",
            resource_group_name=self.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=plan.database,
            delegations=[
                network.DelegationArgs(name="postgres", service_name="Microsoft.DBforPostgreSQL/flexibleServers")
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[apps_subnet]),
        )
        gateway_subnet = network.Subnet(
            f"{name}-gateway-subnet",
            resource_group_name=self.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=plan.gateway,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[database_subnet]),
        )
        self.apps_subnet_id = apps_subnet.id
        self.database_subnet_id = database_subnet.id
        self.gateway_subnet_id = gateway_subnet.id

        # Flexible Server with private access needs a zone ending in
        # .private.postgres.database.azure.com, linked to the VNet it is injected into.
        dns_zone = privatedns.PrivateZone(
            f"{name}-postgres-dns",
            resource_group_name=self.resource_group_name,
            private_zone_name=f"{name}.private.postgres.database.azure.com",
            location="global",
            opts=child,
        )
        dns_link = privatedns.VirtualNetworkLink(
            f"{name}-postgres-dns-link",
            resource_group_name=self.resource_group_name,
            private_zone_name=dns_zone.name,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=vnet.id),
            registration_enabled=False,
            opts=child,
        )
        # Handing out the zone id only once the link exists makes every server that
        # uses it wait for the link: a server created before it cannot resolve itself.
        self.postgres_dns_zone_id = pulumi.Output.all(dns_zone.id, dns_link.id).apply(lambda ids: ids[0])

        self.register_outputs(
            {
                "resourceGroupName": self.resource_group_name,
                "vnetId": self.vnet_id,
                "appsSubnetId": self.apps_subnet_id,
                "databaseSubnetId": self.database_subnet_id,
                "gatewaySubnetId": self.gateway_subnet_id,
                "postgresDnsZoneId": self.postgres_dns_zone_id,
            }
        )
