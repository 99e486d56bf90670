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
from components.azure.certificate import GatewayCertificate, GatewayCertificateArgs
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
SSL_POLICY = "AppGwSslPolicy20220101S"


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
    # Protects the hastack-made Key Vault (when the stack brings no certificate).
    protect: bool


class LoadBalancer(pulumi.ComponentResource):
    """Public IP, WAF policy (WAF_v2), the certificate reader identity (plus a hastack Key Vault
    and certificate when the stack brings none) and the HTTPS-only Application Gateway."""

    gateway_id: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    url: pulumi.Output[str]
    # The gateway's identity: with loadBalancer.certificateSecretId, grant it
    # "Key Vault Secrets User" on that vault.
    certificate_reader_principal_id: pulumi.Output[str]

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

        # The gateway reads its listener certificate from Key Vault as this identity.
        certificate_reader = managedidentity.UserAssignedIdentity(
            f"{name}-certificate-reader",
            resource_group_name=args.resource_group_name,
            location=args.location,
            opts=child,
        )
        if settings.certificate_secret_id:
            # The user's vault: granting this identity "Key Vault Secrets User" there is
            # the user's step (docs/azure.md, "HTTPS certificate").
            certificate_secret_id: pulumi.Input[str] = settings.certificate_secret_id
            reader_ready: list[pulumi.Resource] = []
        else:
            own_certificate = GatewayCertificate(
                f"{name}-tls",
                GatewayCertificateArgs(
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    reader_principal_id=certificate_reader.principal_id,
                    gateway_subnet_id=args.subnet_id,
                    public_ip_address=public_ip.ip_address,
                    common_name=gateway_name,
                    vault_name_prefix=name,
                    protect=args.protect,
                ),
                opts=child,
            )
            certificate_secret_id = own_certificate.secret_id
            reader_ready = own_certificate.reader_ready

        part = functools.partial(gateway_child_id, gateway_id)
        check = settings.health_check
        frontend = part("frontendIPConfigurations", FRONTEND_IP)
        frontend_ports = [
            network.ApplicationGatewayFrontendPortArgs(name=HTTP_PORT_NAME, port=settings.port),
            network.ApplicationGatewayFrontendPortArgs(name=HTTPS_PORT_NAME, port=HTTPS_PORT),
        ]
        listeners = [
            network.ApplicationGatewayHttpListenerArgs(
                name=HTTP_LISTENER,
                protocol="Http",
                frontend_ip_configuration=frontend,
                frontend_port=part("frontendPorts", HTTP_PORT_NAME),
            ),
            network.ApplicationGatewayHttpListenerArgs(
                name=HTTPS_LISTENER,
                protocol="Https",
                frontend_ip_configuration=frontend,
                frontend_port=part("frontendPorts", HTTPS_PORT_NAME),
                ssl_certificate=part("sslCertificates", CERTIFICATE),
            ),
        ]
        # Plain HTTP only redirects; the app is reached over HTTPS alone.
        redirects = [
            network.ApplicationGatewayRedirectConfigurationArgs(
                name=HTTPS_REDIRECT,
                redirect_type="Permanent",
                target_listener=part("httpListeners", HTTPS_LISTENER),
                include_path=True,
                include_query_string=True,
            )
        ]
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
            identity=network.ManagedServiceIdentityArgs(
                type="UserAssigned", user_assigned_identities=[certificate_reader.id]
            ),
            firewall_policy=network.SubResourceArgs(id=firewall_policy.id) if firewall_policy else None,
            # TLS 1.2+ with GCM suites only: the "S" variant drops the CBC suites
            # AppGwSslPolicy20220101 still allows
            # (https://learn.microsoft.com/en-us/azure/application-gateway/application-gateway-ssl-policy-overview).
            ssl_policy=network.ApplicationGatewaySslPolicyArgs(policy_type="Predefined", policy_name=SSL_POLICY),
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
            ssl_certificates=[
                network.ApplicationGatewaySslCertificateArgs(name=CERTIFICATE, key_vault_secret_id=certificate_secret_id)
            ],
            redirect_configurations=redirects,
            request_routing_rules=rules,
            opts=pulumi.ResourceOptions(parent=self, depends_on=reader_ready),
        )

        self.gateway_id = gateway.id
        self.public_ip = public_ip.ip_address
        self.url = pulumi.Output.concat("https://", public_ip.ip_address)
        self.certificate_reader_principal_id = certificate_reader.principal_id
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
