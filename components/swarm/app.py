"""The app: one replicated Swarm service, updated by Swarm itself one task at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import AppConfig
from components.postgres_nodes import DATABASE_CA_FILE
from components.render.secret_files import FILE_SUFFIX
from components.swarm.common import (
    attached,
    config_file,
    healthcheck,
    output_config,
    pinned_by_digest,
    secret_file,
    secret_path,
    service_name,
    swarm_secret,
)

# The task's container healthcheck. On Swarm it is liveness: a failing task is killed and
# replaced (docs.docker.com/reference/dockerfile/#healthcheck, swarmkit's health monitor),
# so it probes app.livenessPath, never the DB-dependent readiness; a database outage
# must not make Swarm kill every replica. Readiness is HAProxy's check.
HEALTH_INTERVAL_S = 2
HEALTH_TIMEOUT_S = 3
HEALTH_RETRIES = 3
# A new task may take this long to migrate and start serving before it counts as failed.
START_PERIOD_S = 120
# After each updated task is running (Swarm starts it once healthy), watch it this long
# for failure before going on: the time the healthcheck needs to fail it, plus one interval.
UPDATE_MONITOR_S = HEALTH_RETRIES * (HEALTH_INTERVAL_S + HEALTH_TIMEOUT_S) + HEALTH_INTERVAL_S
# Between two tasks: HAProxy re-resolves tasks.<service> every second and needs `rise`
# good checks before it sends traffic, so the next old task is stopped only after that.
UPDATE_DELAY_S = 10
# Time to finish in-flight requests after SIGTERM before the task is killed.
STOP_GRACE_S = 30


@dataclass(frozen=True)
class AppArgs:
    config: AppConfig
    max_replicas_per_node: int
    networks: Sequence[docker.Network]
    shared_mount: docker.ServiceTaskSpecContainerSpecMountArgs
    database_url: pulumi.Input[str]
    database_read_url: pulumi.Input[str]
    # Env name -> generated secret value, the same on every replica.
    secrets: Mapping[str, pulumi.Input[str]]
    # The stack CA, where the URLs' `sslrootcert` expects it.
    database_ca_pem: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource] = ()


def update_policy() -> dict:
    """Rolling updates (and their rollback) as Swarm runs them: one task at a time, the
    new one started before the old one stops, a failed update rolled back."""
    common = dict(parallelism=1, order="start-first", monitor=f"{UPDATE_MONITOR_S}s", delay=f"{UPDATE_DELAY_S}s", max_failure_ratio="0")
    return {
        "update_config": docker.ServiceUpdateConfigArgs(failure_action="rollback", **common),
        "rollback_config": docker.ServiceRollbackConfigArgs(failure_action="pause", **common),
    }


class App(pulumi.ComponentResource):
    """`config.replicas` tasks of one image on the app and data overlays; `NODE_ID` is
    `app-<slot>` (Swarm's {{.Task.Slot}}), unique and stable per replica slot."""

    service: docker.Service
    service_name: str
    port: int

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:App", name, None, opts)
        config = args.config
        image = pinned_by_digest(f"{name}-image", config.image, self)
        file_secrets = {
            "DATABASE_URL": args.database_url,
            "DATABASE_READ_URL": args.database_read_url,
            **dict(sorted(args.secrets.items())),
        }
        mounted = [
            secret_file(swarm_secret(f"{name}-{env_name.lower().replace('_', '-')}", value, self), env_name)
            for env_name, value in file_secrets.items()
        ]
        env = {
            **config.env,
            "NODE_ID": "app-{{.Task.Slot}}",
            "PORT": str(config.port),
            "STORAGE_PATH": args.shared_mount.target,
            # The *_FILE convention: the app reads each value from its secret file.
            **{f"{env_name}{FILE_SUFFIX}": secret_path(env_name) for env_name in file_secrets},
        }
        # Required with an image (the config says so): only the user knows what the image can run.
        probe = config.healthcheck_command
        self.service_name = service_name(name)
        self.port = config.port
        self.service = docker.Service(
            f"{name}-service",
            name=self.service_name,
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=config.replicas)),
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=image,
                    env=env,
                    secrets=mounted,
                    configs=[config_file(output_config(f"{name}-database-ca", args.database_ca_pem, self), DATABASE_CA_FILE)],
                    mounts=[args.shared_mount],
                    healthcheck=healthcheck(probe, interval_s=HEALTH_INTERVAL_S, timeout_s=HEALTH_TIMEOUT_S,
                                            retries=HEALTH_RETRIES, start_period_s=START_PERIOD_S),
                    stop_signal="SIGTERM",
                    stop_grace_period=f"{STOP_GRACE_S}s",
                ),
                # The scheduler spreads a service's tasks over the nodes by default; the cap
                # keeps a node's loss from taking more than this many replicas with it.
                placement=docker.ServiceTaskSpecPlacementArgs(max_replicas=args.max_replicas_per_node),
                networks_advanceds=attached(args.networks),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="2s"),
            ),
            # Tasks are found by HAProxy through DNS (tasks.<service>), not through a VIP.
            endpoint_spec=docker.ServiceEndpointSpecArgs(mode="dnsrr"),
            **update_policy(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"serviceName": self.service_name, "port": self.port})
