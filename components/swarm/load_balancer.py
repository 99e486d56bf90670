"""HAProxy on every node: a `global` service that publishes its ports on each node's own
address, finds the app's tasks through Docker's DNS, and terminates HTTPS (`loadBalancer.tls`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.certificates import ServerCertificate
from components.config import HAPROXY_IMAGE, LoadBalancerConfig
from components.load_balancer_settings import HAPROXY_UID, checks_and_retries, tls_termination
from components.render.haproxy import HaproxySettings, ServerTemplate, render_haproxy_cfg
from components.swarm.common import (
    DOCKER_DNS,
    attached,
    config_file,
    content_named_config,
    pinned_by_digest,
    secret_file,
    secret_path,
    service_name,
    swarm_secret,
)

# Where the official image's default command reads its config.
CONFIG_FILE = "/usr/local/etc/haproxy/haproxy.cfg"
# Ports HAProxy binds inside the task (the image runs as an unprivileged user).
LISTEN_PORT = 8080
STATS_PORT = 8404
TLS_LISTEN_PORT = 8443
# Certificate and key in one PEM (HAProxy's `crt`): a Swarm secret, so the key is never in a
# config or the service spec, mounted at /run/secrets/<this> readable by HAProxy's user alone.
CERTIFICATE_SECRET = "site.pem"
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
    # What HAProxy serves HTTPS with when `config.tls.enabled`.
    certificate: ServerCertificate | None = None


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
        tls=tls_termination(args.config, TLS_LISTEN_PORT, secret_path(CERTIFICATE_SECRET)),
    )


def host_port(target: int, published: int) -> docker.ServiceEndpointSpecPortArgs:
    """A port bound on each node's own address (no routing mesh): a client reaches the HAProxy
    of the node it connects to."""
    return docker.ServiceEndpointSpecPortArgs(target_port=target, published_port=published, publish_mode="host")


class LoadBalancer(pulumi.ComponentResource):
    """One HAProxy task per node. Host-mode ports bind the node's own port, so two tasks
    cannot overlap on one node: updates stop the old task first (moby/moby#36934)."""

    config_text: str
    service_name: str
    port: int
    stats_port: int
    # The published HTTPS port; None without TLS.
    tls_port: int | None

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:LoadBalancer", name, None, opts)
        settings = haproxy_settings(args)
        self.config_text = render_haproxy_cfg(settings)
        cfg = content_named_config(f"{name}-haproxy-cfg", f"{name}-haproxy", self.config_text, self)
        self.service_name = service_name(name)
        self.port = args.config.port
        self.stats_port = args.config.stats_port
        self.tls_port = settings.tls.public_port if settings.tls else None
        ports = [host_port(LISTEN_PORT, self.port), host_port(STATS_PORT, self.stats_port)]
        secrets = []
        if settings.tls:
            if args.certificate is None:
                raise ValueError("loadBalancer.tls is enabled but no certificate was given to the load balancer")
            certificate = swarm_secret(f"{name}-certificate", args.certificate.pem_bundle(), self)
            secrets.append(secret_file(certificate, CERTIFICATE_SECRET, uid=HAPROXY_UID))
            ports.append(host_port(TLS_LISTEN_PORT, settings.tls.public_port))
        docker.Service(
            f"{name}-service",
            name=self.service_name,
            mode=docker.ServiceModeArgs(global_=True),
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=pinned_by_digest(f"{name}-image", HAPROXY_IMAGE, self),
                    configs=[config_file(cfg, CONFIG_FILE)],
                    secrets=secrets or None,
                    stop_grace_period=f"{STOP_GRACE_S}s",
                ),
                networks_advanceds=attached(args.networks),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="2s"),
            ),
            endpoint_spec=docker.ServiceEndpointSpecArgs(ports=ports),
            update_config=docker.ServiceUpdateConfigArgs(
                parallelism=1, order="stop-first", failure_action="rollback", delay=f"{UPDATE_DELAY_S}s"
            ),
            rollback_config=docker.ServiceRollbackConfigArgs(parallelism=1, order="stop-first", failure_action="pause"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"serviceName": self.service_name, "port": self.port, "statsPort": self.stats_port,
                               "tlsPort": self.tls_port})
