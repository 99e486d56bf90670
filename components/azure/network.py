"""The private network every other Azure piece lives in.

One VNet, three subnets (each service needs its own: Container Apps and PostgreSQL
take delegated subnets, Application Gateway an exclusive one) and the private DNS
zone that resolves the PostgreSQL servers inside the VNet.

Every subnet has a network security group that denies inbound traffic except what its
tier needs (`inbound_rules`). Azure's default rules would admit the whole VNet
(AllowVnetInBound), so each group ends in an explicit deny-all above them.
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
class InboundRule:
    """One allow rule of a subnet's network security group."""

    name: str
    priority: int
    protocol: str  # Tcp | *
    source: str  # a service tag or a CIDR
    ports: tuple[str, ...]
    why: str


# Evaluated before Azure's defaults (65000+), after every allow rule hastack adds.
DENY_ALL_PRIORITY = 4096
POSTGRES_PORT = "5432"


def inbound_rules(plan: SubnetPlan, gateway_http_port: int) -> dict[str, list[InboundRule]]:
    """What each subnet admits; everything else inbound is denied."""
    return {
        "gateway": [
            # Application Gateway v2 refuses to deploy into a subnet whose NSG blocks its
            # control plane (https://learn.microsoft.com/en-us/azure/application-gateway/configuration-infrastructure#network-security-groups).
            InboundRule("allow-gateway-manager", 100, "Tcp", "GatewayManager", ("65200-65535",),
                        "Application Gateway v2 infrastructure communication"),
            InboundRule("allow-internet-listeners", 110, "Tcp", "Internet", (str(gateway_http_port), "443"),
                        "The listeners: HTTPS, and HTTP that only redirects"),
            InboundRule("allow-azure-load-balancer", 120, "*", "AzureLoadBalancer", ("*",),
                        "Azure's health probes of the gateway instances"),
        ],
        "apps": [
            # The internal load balancer hands 443 to the environment's edge proxy on 31443, and
            # the NSG sees both (https://learn.microsoft.com/en-us/azure/container-apps/firewall-integration).
            InboundRule("allow-gateway-https", 100, "Tcp", plan.gateway, ("443", "31443"),
                        "The gateway reaches the environment's internal ingress over HTTPS"),
            InboundRule("allow-environment-internal", 110, "*", plan.apps, ("*",),
                        "Container Apps nodes and replicas talk to each other inside the subnet"),
            InboundRule("allow-azure-load-balancer", 120, "*", "AzureLoadBalancer", ("*",),
                        "The environment's internal load balancer probes its nodes"),
        ],
        "database": [
            InboundRule("allow-apps-postgres", 100, "Tcp", plan.apps, (POSTGRES_PORT,),
                        "The app replicas (and their role-setup init container) connect to PostgreSQL"),
            InboundRule("allow-database-internal", 110, "*", plan.database, ("*",),
                        "The HA standby and read replicas replicate inside the subnet"),
        ],
    }  # fmt: skip


def _security_rules(rules: list[InboundRule], destination: str) -> list[network.SecurityRuleArgs]:
    allows = [
        network.SecurityRuleArgs(
            name=rule.name,
            description=rule.why,
            priority=rule.priority,
            direction="Inbound",
            access="Allow",
            protocol=rule.protocol,
            source_address_prefix=rule.source,
            source_port_range="*",
            destination_address_prefix=destination,
            destination_port_ranges=list(rule.ports),
        )
        for rule in rules
    ]
    deny = network.SecurityRuleArgs(
        name="deny-all-inbound",
        description="Nothing else reaches this subnet, not even the rest of the VNet",
        priority=DENY_ALL_PRIORITY,
        direction="Inbound",
        access="Deny",
        protocol="*",
        source_address_prefix="*",
        source_port_range="*",
        destination_address_prefix="*",
        destination_port_range="*",
    )
    return [*allows, deny]


@dataclass(frozen=True)
class NetworkArgs:
    location: str
    vnet_cidr: str
    # The gateway's plain-HTTP listener port (loadBalancer.port); HTTPS is 443.
    gateway_http_port: int = 80
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
        security_groups = {
            purpose: network.NetworkSecurityGroup(
                f"{name}-{purpose}-nsg",
                resource_group_name=self.resource_group_name,
                location=args.location,
                # The gateway's destination is any address in its subnet (instance IPs and
                # the frontend); the other tiers admit traffic to their own range only.
                security_rules=_security_rules(rules, "*" if purpose == "gateway" else getattr(plan, purpose)),
                opts=child,
            )
            for purpose, rules in inbound_rules(plan, args.gateway_http_port).items()
        }
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
            network_security_group=network.NetworkSecurityGroupArgs(id=security_groups["apps"].id),
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
            network_security_group=network.NetworkSecurityGroupArgs(id=security_groups["database"].id),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[apps_subnet]),
        )
        gateway_subnet = network.Subnet(
            f"{name}-gateway-subnet",
            resource_group_name=self.resource_group_name,
            virtual_network_name=vnet.name,
            address_prefix=plan.gateway,
            # A hastack-made Key Vault admits this subnet through its firewall.
            service_endpoints=[network.ServiceEndpointPropertiesFormatArgs(service="Microsoft.KeyVault")],
            network_security_group=network.NetworkSecurityGroupArgs(id=security_groups["gateway"].id),
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
