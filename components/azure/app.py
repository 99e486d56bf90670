"""The app replicas: a Container App in an internal, zone-redundant environment.

The environment is injected into the VNet with no public endpoint; the Application
Gateway reaches the app through the environment's internal load balancer. That load
balancer's domain resolves only through the private DNS zone made here (a wildcard
record to the environment's static IP), which is what lets the gateway's backend
pool name the app by FQDN.

Each replica finds its identity in CONTAINER_APP_REPLICA_NAME, which Container Apps
sets per replica; the app uses it as NODE_ID when NODE_ID is unset (docs/azure.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.app as app
import pulumi_azure_native.operationalinsights as operationalinsights
import pulumi_azure_native.privatedns as privatedns

from components.azure import whole_seconds
from components.config import AppConfig, HealthCheckConfig

# Workload-profile environments take a small delegated subnet and support zone
# redundancy; apps run on the serverless "Consumption" profile within it.
WORKLOAD_PROFILE = "Consumption"
SHARED_VOLUME = "shared-files"
CONTAINER_NAME = "app"
SECRETS_DIGEST_ENV = "HASTACK_SETTINGS_DIGEST"
SECRETS_DIGEST_LENGTH = 16
# A psql session for a few seconds; the smallest Consumption size.
INIT_CPU = 0.25
INIT_MEMORY = "0.5Gi"


@dataclass(frozen=True)
class AppArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    infrastructure_subnet_id: pulumi.Input[str]
    vnet_id: pulumi.Input[str]
    app: AppConfig
    # Readiness follows the load balancer's health check, so a failing replica leaves
    # the environment's load balancer as fast as HAProxy would eject it on Docker.
    health_check: HealthCheckConfig
    readiness_path: str
    mount_path: str
    environment_storage: app.ManagedEnvironmentStoragePropertiesArgs
    volume_storage_type: str
    # Env name -> secret value (DATABASE_URL, generated secrets): Container App secrets.
    secret_env: Mapping[str, pulumi.Input[str]]
    # Runs to completion before the app container in every replica.
    init: InitContainer


@dataclass(frozen=True)
class InitContainer:
    """A one-shot container with its own env and secrets, which the app container never sees."""

    name: str
    image: str
    command: list[str]
    env: Mapping[str, pulumi.Input[str]]
    secret_env: Mapping[str, pulumi.Input[str]]

    def secret_name(self, env_name: str) -> str:
        """Its secrets are named apart from the app's, so no app secretRef can match one."""
        return f"{self.name}-{secret_ref(env_name)}"


class App(pulumi.ComponentResource):
    """Log Analytics workspace, managed environment, shared volume and the Container App."""

    workspace_id: pulumi.Output[str]
    environment_id: pulumi.Output[str]
    container_app_id: pulumi.Output[str]
    container_app_name: pulumi.Output[str]
    # The environment-internal FQDN the gateway's backend pool targets.
    fqdn: pulumi.Output[str]

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:azure:App", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.app

        workspace = operationalinsights.Workspace(
            f"{name}-logs",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=operationalinsights.WorkspaceSkuArgs(name="PerGB2018"),
            retention_in_days=30,
            opts=child,
        )
        environment = app.ManagedEnvironment(
            f"{name}-env",
            resource_group_name=args.resource_group_name,
            location=args.location,
            # Logs go through diagnostic settings (Monitoring), which needs no shared key.
            app_logs_configuration=app.AppLogsConfigurationArgs(destination="azure-monitor"),
            vnet_configuration=app.VnetConfigurationArgs(
                infrastructure_subnet_id=args.infrastructure_subnet_id,
                internal=True,
            ),
            zone_redundant=True,
            workload_profiles=[app.WorkloadProfileArgs(name=WORKLOAD_PROFILE, workload_profile_type=WORKLOAD_PROFILE)],
            opts=child,
        )

        environment_dns = privatedns.PrivateZone(
            f"{name}-env-dns",
            resource_group_name=args.resource_group_name,
            private_zone_name=environment.default_domain,
            location="global",
            opts=child,
        )
        wildcard_record = privatedns.PrivateRecordSet(
            f"{name}-env-dns-wildcard",
            resource_group_name=args.resource_group_name,
            private_zone_name=environment_dns.name,
            record_type="A",
            relative_record_set_name="*",
            ttl=300,
            a_records=[privatedns.ARecordArgs(ipv4_address=environment.static_ip)],
            opts=child,
        )
        environment_dns_link = privatedns.VirtualNetworkLink(
            f"{name}-env-dns-link",
            resource_group_name=args.resource_group_name,
            private_zone_name=environment_dns.name,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=args.vnet_id),
            registration_enabled=False,
            opts=child,
        )

        # The volume names this environment storage, not the file share.
        shared_files = app.ManagedEnvironmentsStorage(
            f"{name}-env-files",
            resource_group_name=args.resource_group_name,
            environment_name=environment.name,
            storage_name=SHARED_VOLUME,
            properties=args.environment_storage,
            opts=child,
        )

        init = args.init
        all_secret_values = [*args.secret_env.values(), *init.secret_env.values()]
        secrets = [
            *(app.SecretArgs(name=secret_ref(env), value=value) for env, value in sorted(args.secret_env.items())),
            *(app.SecretArgs(name=init.secret_name(env), value=value) for env, value in sorted(init.secret_env.items())),
        ]
        env = [
            app.EnvironmentVarArgs(name="PORT", value=str(settings.port)),
            app.EnvironmentVarArgs(name="STORAGE_PATH", value=args.mount_path),
            *(app.EnvironmentVarArgs(name=key, value=value) for key, value in sorted(settings.env.items())),
            *(app.EnvironmentVarArgs(name=key, secret_ref=secret_ref(key)) for key in sorted(args.secret_env)),
            # Container App secrets are app-scoped: a changed value creates no revision, so
            # running replicas keep the old one (and the role-setup init container does not
            # rerun) until they restart (https://github.com/microsoft/azure-container-apps/issues/691).
            # A digest of every secret in the template makes any change a new revision.
            app.EnvironmentVarArgs(name=SECRETS_DIGEST_ENV, value=secrets_digest(all_secret_values)),
        ]

        container_app = app.ContainerApp(
            f"{name}-app",
            # Named, not autonamed: an autoname suffix could break the 32-character limit.
            container_app_name=f"{name}-app",
            resource_group_name=args.resource_group_name,
            location=args.location,
            managed_environment_id=environment.id,
            workload_profile_name=WORKLOAD_PROFILE,
            identity=app.ManagedServiceIdentityArgs(type="SystemAssigned"),
            configuration=app.ConfigurationArgs(
                active_revisions_mode="Single",
                ingress=app.IngressArgs(
                    # In an internal environment "external" means reachable from the VNet
                    # (the gateway), still never from the internet.
                    external=True,
                    target_port=settings.port,
                    transport="auto",
                    allow_insecure=False,
                ),
                secrets=secrets,
            ),
            template=app.TemplateArgs(
                init_containers=[
                    app.InitContainerArgs(
                        name=init.name,
                        image=init.image,
                        command=init.command,
                        env=[
                            *(app.EnvironmentVarArgs(name=key, value=value) for key, value in sorted(init.env.items())),
                            *(
                                app.EnvironmentVarArgs(name=key, secret_ref=init.secret_name(key))
                                for key in sorted(init.secret_env)
                            ),
                        ],
                        resources=app.ContainerResourcesArgs(cpu=INIT_CPU, memory=INIT_MEMORY),
                    )
                ],
                containers=[
                    app.ContainerArgs(
                        name=CONTAINER_NAME,
                        image=settings.image,
                        env=env,
                        resources=app.ContainerResourcesArgs(cpu=settings.cpu, memory=f"{settings.memory_gi}Gi"),
                        probes=_probes(args),
                        volume_mounts=[app.VolumeMountArgs(volume_name=SHARED_VOLUME, mount_path=args.mount_path)],
                    )
                ],
                scale=app.ScaleArgs(min_replicas=settings.replicas, max_replicas=settings.autoscale_max),
                volumes=[
                    app.VolumeArgs(
                        name=SHARED_VOLUME,
                        storage_type=args.volume_storage_type,
                        storage_name=shared_files.name,
                    )
                ],
            ),
            opts=child,
        )

        self.workspace_id = workspace.id
        self.environment_id = environment.id
        self.container_app_id = container_app.id
        self.container_app_name = container_app.name
        # Container Apps names an app `<app>.<environment default domain>`. (Reading
        # `configuration.ingress.fqdn` instead would make it secret: that output also
        # carries the app's secrets.) It is handed out only once the name resolves in the
        # VNet, so the gateway never starts probing a name it cannot look up.
        self.fqdn = pulumi.Output.all(
            container_app.name, environment.default_domain, wildcard_record.id, environment_dns_link.id
        ).apply(lambda parts: f"{parts[0]}.{parts[1]}")
        self.register_outputs(
            {
                "workspaceId": self.workspace_id,
                "environmentId": self.environment_id,
                "containerAppId": self.container_app_id,
                "fqdn": self.fqdn,
            }
        )


def secrets_digest(values: list[pulumi.Input[str]]) -> pulumi.Output[str]:
    """16 hex characters of SHA-256 over the secret values: changes when any of them does.

    Not secret itself: a truncated hash of 190-bit random values reveals nothing about them,
    and a plain env value keeps the template (and its diff) readable."""
    digest = pulumi.Output.all(*values).apply(
        lambda texts: hashlib.sha256("\0".join(texts).encode()).hexdigest()[:SECRETS_DIGEST_LENGTH]
    )
    return pulumi.Output.unsecret(digest)


def secret_ref(env_name: str) -> str:
    """Container App secret names are lowercase with dashes: DATABASE_URL -> database-url."""
    return env_name.lower().replace("_", "-")


def _probes(args: AppArgs) -> list[app.ContainerAppProbeArgs]:
    """Liveness never touches the DB (an outage must not restart every replica);
    readiness does, and follows the LB health check; startup gives migrations time."""
    port = args.app.port
    check = args.health_check
    return [
        app.ContainerAppProbeArgs(
            type="Startup",
            http_get=app.ContainerAppProbeHttpGetArgs(path=args.app.liveness_path, port=port),
            initial_delay_seconds=2,
            period_seconds=3,
            timeout_seconds=2,
            # Up to 30 s to boot and migrate before liveness takes over.
            failure_threshold=10,
        ),
        app.ContainerAppProbeArgs(
            type="Liveness",
            http_get=app.ContainerAppProbeHttpGetArgs(path=args.app.liveness_path, port=port),
            period_seconds=10,
            timeout_seconds=3,
            failure_threshold=3,
        ),
        app.ContainerAppProbeArgs(
            type="Readiness",
            http_get=app.ContainerAppProbeHttpGetArgs(path=args.readiness_path, port=port),
            period_seconds=whole_seconds(check.interval_ms),
            timeout_seconds=whole_seconds(check.timeout_ms),
            failure_threshold=check.fall,
            success_threshold=check.rise,
        ),
    ]
