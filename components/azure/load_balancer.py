"""Application Gateway v2: the public, zone-redundant, health-checking front door.

The gateway is one ARM resource whose parts (listeners, pools, probes, ...) refer to
each other by full ARM id, an id that includes the gateway itself. The gateway gets a
fixed name so those ids are known before it exists; `gateway_child_id` is the only
place that builds them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.managedidentity as managedidentity
import pulumi_azure_native.network as network

from components.azure import whole_seconds
from components.config import LoadBalancerConfig

ZONES = ["1", "2", "3"]
HTTPS_PORT = 443

# Names of the gateway's own parts, referenced across its configuration.
GATEWAY_IP = "gateway-ip"
FRONTEND_IP = "public"
HTTP_PORT_NAME = "http"
HTTPS_PORT_NAME = "https"
BACKEND_POOL = "container-app"
BACKEND_SETTINGS = "container-app-https"
READINESS_PROBE = "readiness"
HTTP_LISTENER = "http"
HTTPS_LISTENER = "https"
CERTIFICATE = "listener-certificate"
HTTPS_REDIRECT = "http-to-https"


def gateway_child_id(gateway_id: pulumi.Input[str], kind: str, child: str) -> network.SubResourceArgs:
    """A reference to one of the gateway's own parts, e.g. ("probes", "readiness")."""
    return network.SubResourceArgs(id=pulumi.Output.concat(gateway_id, "/", kind, "/", child))


@dataclass(frozen=True)
class LoadBalancerArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    subnet_id: pulumi.Input[str]
    # The Container App's environment-internal FQDN.
    backend_fqdn: pulumi.Input[str]
    settings: LoadBalancerConfig
    health_path: str


class LoadBalancer(pulumi.ComponentResource):
    """Public IP, WAF policy (WAF_v2) and the Application Gateway."""

    gateway_id: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    url: pulumi.Output[str]
    # Set when an HTTPS certificate is configured: grant it "Key Vault Secrets User".
    certificate_reader_principal_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:azure:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        gateway_name = f"{name}-agw"

        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        gateway_id = pulumi.Output.concat(
            "/subscriptions/", client.subscription_id,
            "/resourceGroups/", args.resource_group_name,
            "/providers/Microsoft.Network/applicationGateways/", gateway_name,
        )  # fmt: skip

        public_ip = network.PublicIPAddress(
            f"{name}-ip",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=network.PublicIPAddressSkuArgs(name="Standard", tier="Regional"),
            public_ip_allocation_method="Static",
            zones=ZONES,
            opts=child,
        )

        firewall_policy = None
        if settings.sku == "WAF_v2":
            firewall_policy = network.WebApplicationFirewallPolicy(
                f"{name}-waf",
                resource_group_name=args.resource_group_name,
                location=args.location,
                policy_settings=network.PolicySettingsArgs(mode="Prevention", state="Enabled", request_body_check=True),
                managed_rules=network.ManagedRulesDefinitionArgs(
                    managed_rule_sets=[network.ManagedRuleSetArgs(rule_set_type="OWASP", rule_set_version="3.2")]
                ),
                opts=child,
            )

        certificate_reader = None
        if settings.certificate_secret_id:
            # The gateway reads the PFX from Key Vault as this identity.
            certificate_reader = managedidentity.UserAssignedIdentity(
                f"{name}-certificate-reader",
                resource_group_name=args.resource_group_name,
                location=args.location,
                opts=child,
            )

        part = functools.partial(gateway_child_id, gateway_id)
        check = settings.health_check
        frontend_ports = [network.ApplicationGatewayFrontendPortArgs(name=HTTP_PORT_NAME, port=settings.port)]
        http_listener = network.ApplicationGatewayHttpListenerArgs(
            name=HTTP_LISTENER,
            protocol="Http",
            frontend_ip_configuration=part("frontendIPConfigurations", FRONTEND_IP),
            frontend_port=part("frontendPorts", HTTP_PORT_NAME),
        )
        listeners = [http_listener]
        ssl_certificates = []
        redirects = []
        if certificate_reader is None:
            rules = [_route(gateway_id, HTTP_LISTENER, priority=100)]
        else:
            frontend_ports.append(network.ApplicationGatewayFrontendPortArgs(name=HTTPS_PORT_NAME, port=HTTPS_PORT))
            listeners.append(
                network.ApplicationGatewayHttpListenerArgs(
                    name=HTTPS_LISTENER,
                    protocol="Https",
                    frontend_ip_configuration=part("frontendIPConfigurations", FRONTEND_IP),
                    frontend_port=part("frontendPorts", HTTPS_PORT_NAME),
                    ssl_certificate=part("sslCertificates", CERTIFICATE),
                )
            )
            ssl_certificates.append(
                network.ApplicationGatewaySslCertificateArgs(
                    name=CERTIFICATE, key_vault_secret_id=settings.certificate_secret_id
                )
            )
            # With a certificate, plain HTTP only redirects.
            redirects.append(
                network.ApplicationGatewayRedirectConfigurationArgs(
                    name=HTTPS_REDIRECT,
                    redirect_type="Permanent",
                    target_listener=part("httpListeners", HTTPS_LISTENER),
                    include_path=True,
                    include_query_string=True,
                )
            )
            rules = [
                _route(gateway_id, HTTPS_LISTENER, priority=100),
                network.ApplicationGatewayRequestRoutingRuleArgs(
                    name=HTTPS_REDIRECT,
                    rule_type="Basic",
                    priority=110,
                    http_listener=part("httpListeners", HTTP_LISTENER),
                    redirect_configuration=part("redirectConfigurations", HTTPS_REDIRECT),
                ),
            ]

        gateway = network.ApplicationGateway(
            f"{name}-gateway",
            application_gateway_name=gateway_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=network.ApplicationGatewaySkuArgs(name=settings.sku, tier=settings.sku),
            autoscale_configuration=network.ApplicationGatewayAutoscaleConfigurationArgs(
                min_capacity=settings.min_capacity, max_capacity=settings.max_capacity
            ),
            zones=ZONES,
            enable_http2=True,
            identity=(
                network.ManagedServiceIdentityArgs(
                    type="UserAssigned", user_assigned_identities=[certificate_reader.id]
                )
                if certificate_reader
                else None
            ),
            firewall_policy=network.SubResourceArgs(id=firewall_policy.id) if firewall_policy else None,
            ssl_policy=network.ApplicationGatewaySslPolicyArgs(
                policy_type="Predefined", policy_name="AppGwSslPolicy20220101"
            ),
            gateway_ip_configurations=[
                network.ApplicationGatewayIPConfigurationArgs(
                    name=GATEWAY_IP, subnet=network.SubResourceArgs(id=args.subnet_id)
                )
            ],
            frontend_ip_configurations=[
                network.ApplicationGatewayFrontendIPConfigurationArgs(
                    name=FRONTEND_IP, public_ip_address=network.SubResourceArgs(id=public_ip.id)
                )
            ],
            frontend_ports=frontend_ports,
            backend_address_pools=[
                network.ApplicationGatewayBackendAddressPoolArgs(
                    name=BACKEND_POOL,
                    backend_addresses=[network.ApplicationGatewayBackendAddressArgs(fqdn=args.backend_fqdn)],
                )
            ],
            backend_http_settings_collection=[
                network.ApplicationGatewayBackendHttpSettingsArgs(
                    name=BACKEND_SETTINGS,
                    # Container Apps ingress routes by Host header and terminates TLS with a
                    # certificate for its own domain, so the gateway sends the app's FQDN.
                    protocol="Https",
                    port=HTTPS_PORT,
                    pick_host_name_from_backend_address=True,
                    cookie_based_affinity="Disabled",
                    request_timeout=30,
                    probe=part("probes", READINESS_PROBE),
                )
            ],
            probes=[
                network.ApplicationGatewayProbeArgs(
                    name=READINESS_PROBE,
                    protocol="Https",
                    path=args.health_path,
                    interval=whole_seconds(check.interval_ms),
                    timeout=whole_seconds(check.timeout_ms),
                    unhealthy_threshold=check.fall,
                    pick_host_name_from_backend_http_settings=True,
                    match=network.ApplicationGatewayProbeHealthResponseMatchArgs(status_codes=["200-399"]),
                )
            ],
            http_listeners=listeners,
            ssl_certificates=ssl_certificates or None,
            redirect_configurations=redirects or None,
            request_routing_rules=rules,
            opts=child,
        )

        self.gateway_id = gateway.id
        self.public_ip = public_ip.ip_address
        scheme, port = ("https", HTTPS_PORT) if certificate_reader else ("http", settings.port)
        default_port = {"http": 80, "https": 443}[scheme]
        port_suffix = "" if port == default_port else f":{port}"
        self.url = pulumi.Output.concat(scheme, "://", public_ip.ip_address, port_suffix)
        self.certificate_reader_principal_id = certificate_reader.principal_id if certificate_reader else None
        self.register_outputs({"gatewayId": self.gateway_id, "publicIp": self.public_ip, "url": self.url})


def _route(gateway_id: pulumi.Input[str], listener: str, priority: int) -> network.ApplicationGatewayRequestRoutingRuleArgs:
    """Send everything a listener receives to the Container App."""
    return network.ApplicationGatewayRequestRoutingRuleArgs(
        name=f"{listener}-to-app",
        rule_type="Basic",
        priority=priority,
        http_listener=gateway_child_id(gateway_id, "httpListeners", listener),
        backend_address_pool=gateway_child_id(gateway_id, "backendAddressPools", BACKEND_POOL),
        backend_http_settings=gateway_child_id(gateway_id, "backendHttpSettingsCollection", BACKEND_SETTINGS),
    )
