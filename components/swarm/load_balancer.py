"""HAProxy on every node: a `global` service that publishes its ports on each node's own
address and finds the app's tasks through Docker's DNS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import HAPROXY_IMAGE, LoadBalancerConfig
from components.load_balancer_settings import checks_and_retries
from components.render.haproxy import HaproxySettings, ServerTemplate, render_haproxy_cfg
from components.swarm.common import DOCKER_DNS, attached, config_file, content_named_config, pinned_by_digest, service_name

# Where the official image's default command reads its config.
CONFIG_FILE = "/usr/local/etc/haproxy/haproxy.cfg"
# Ports HAProxy binds inside the task (the image runs as an unprivileged user).
LISTEN_PORT = 8080
STATS_PORT = 8404
# Lets in-flight requests finish (haproxy's hard-stop-after is 30 s).
STOP_GRACE_S = 30
# One node's LB at a time, with time for clients to move to the others.
UPDATE_DELAY_S = 10


@dataclass(frozen=True)
class LoadBalancerArgs:
    config: LoadBalancerConfig
    networks: Sequence[docker.Network]
    # The app service's name: its tasks answer as tasks.<name> on the app overlay.
    app_service: str
    app_port: int
    app_replicas: int
    health_path: str
    # app.readHealthPath: set, reads go to a second backend over the same tasks, checked on it.
    read_health_path: str | None = None
    depends_on: Sequence[pulumi.Resource] = ()


def haproxy_settings(args: LoadBalancerArgs) -> HaproxySettings:
    """Every task of the app, wherever it runs, behind every node's HAProxy."""
    return HaproxySettings(
        frontend_port=LISTEN_PORT,
        stats_port=STATS_PORT,
        backends=(),
        # A start-first update runs one task more than `replicas`; spare slots stay in
        # maintenance until DNS fills them.
        server_template=ServerTemplate(prefix="app", slots=2 * args.app_replicas, fqdn=f"tasks.{args.app_service}", port=args.app_port),
        resolver=DOCKER_DNS,
        **checks_and_retries(args.config, args.health_path, args.read_health_path),
    )


class LoadBalancer(pulumi.ComponentResource):
    """One HAProxy task per node. Host-mode ports bind the node's own port, so two tasks
    cannot overlap on one node: updates stop the old task first (moby/moby#36934)."""

    config_text: str
    service_name: str
    port: int
    stats_port: int

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:LoadBalancer", name, None, opts)
        self.config_text = render_haproxy_cfg(haproxy_settings(args))
        cfg = content_named_config(f"{name}-haproxy-cfg", f"{name}-haproxy", self.config_text, self)
        self.service_name = service_name(name)
        self.port = args.config.port
        self.stats_port = args.config.stats_port
        docker.Service(
            f"{name}-service",
            name=self.service_name,
            mode=docker.ServiceModeArgs(global_=True),
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=pinned_by_digest(f"{name}-image", HAPROXY_IMAGE, self),
                    configs=[config_file(cfg, CONFIG_FILE)],
                    stop_grace_period=f"{STOP_GRACE_S}s",
                ),
                networks_advanceds=attached(args.networks),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="2s"),
            ),
            endpoint_spec=docker.ServiceEndpointSpecArgs(
                ports=[
                    docker.ServiceEndpointSpecPortArgs(target_port=LISTEN_PORT, published_port=args.config.port, publish_mode="host"),
                    docker.ServiceEndpointSpecPortArgs(target_port=STATS_PORT, published_port=args.config.stats_port, publish_mode="host"),
                ]
            ),
            update_config=docker.ServiceUpdateConfigArgs(
                parallelism=1, order="stop-first", failure_action="rollback", delay=f"{UPDATE_DELAY_S}s"
            ),
            rollback_config=docker.ServiceRollbackConfigArgs(parallelism=1, order="stop-first", failure_action="pause"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"serviceName": self.service_name, "port": self.port, "statsPort": self.stats_port})
