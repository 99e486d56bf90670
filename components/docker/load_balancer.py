"""HAProxy in front of the app replicas, with active health checks and fast ejection, and
HTTPS termination (`loadBalancer.tls`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.certificates import ServerCertificate
from components.config import HAPROXY_IMAGE, LoadBalancerConfig
from components.docker.common import network_attachment, pulled_image
from components.load_balancer_settings import HAPROXY_UID, checks_and_retries, tls_termination
from components.render.haproxy import Backend, HaproxySettings, render_haproxy_cfg

# Where the official image's default command reads its config.
CONFIG_FILE = "/usr/local/etc/haproxy/haproxy.cfg"
# Ports HAProxy binds inside the container. The image runs as the unprivileged
# `haproxy` user, so these stay above 1024; the configured ports are the host side.
LISTEN_PORT = 8080
STATS_PORT = 8404
TLS_LISTEN_PORT = 8443
# Certificate and key in one PEM (HAProxy's `crt`), owned by the image's `haproxy` user
# (HAPROXY_UID), so HAProxy can read a file no one else can.
CERTIFICATE_FILE = "/usr/local/etc/haproxy/certs/site.pem"
# Docker's embedded DNS: re-resolves an alias when its container is replaced.
DOCKER_DNS = "127.0.0.11:53"
# Lets in-flight requests finish (haproxy's hard-stop-after is 30 s).
STOP_GRACE_S = 30


@dataclass(frozen=True)
class LoadBalancerArgs:
    config: LoadBalancerConfig
    network_name: pulumi.Input[str]
    # The app replicas' DNS aliases on the private network (app-0, app-1, ...).
    backend_aliases: Sequence[str]
    backend_port: int
    # Path of the active health check (load_balancer.healthCheck.path or app.healthPath).
    health_path: str
    # app.readHealthPath: set, reads go to a backend checked on it (components/render/haproxy.py).
    read_health_path: str | None = None
    # The app replicas: they exist before HAProxy starts sending them traffic.
    depends_on: Sequence[pulumi.Resource] = ()
    # What HAProxy serves HTTPS with when `config.tls.enabled`.
    certificate: ServerCertificate | None = None


def haproxy_settings(args: LoadBalancerArgs) -> HaproxySettings:
    return HaproxySettings(
        frontend_port=LISTEN_PORT,
        stats_port=STATS_PORT,
        backends=tuple(Backend(name=alias, address=alias, port=args.backend_port) for alias in args.backend_aliases),
        resolver=DOCKER_DNS,
        **checks_and_retries(args.config, args.health_path, args.read_health_path),
        tls=tls_termination(args.config, TLS_LISTEN_PORT, CERTIFICATE_FILE),
    )


def certificate_upload(certificate: ServerCertificate) -> docker.ContainerUploadArgs:
    """The certificate and its key as one file only HAProxy's user can read; secret, like the key."""
    return docker.ContainerUploadArgs(
        file=CERTIFICATE_FILE,
        content=certificate.pem_bundle(),
        owner=HAPROXY_UID,
        group=HAPROXY_UID,
        permissions="0600",
    )


class LoadBalancer(pulumi.ComponentResource):
    """One HAProxy container; the only thing on the Docker platform published on the host."""

    config_text: str
    container_name: pulumi.Output[str]
    port: int
    stats_port: int
    # The published HTTPS port; None without TLS.
    tls_port: int | None

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:LoadBalancer", name, None, opts)
        image = pulled_image(f"{name}-image", HAPROXY_IMAGE, self)
        settings = haproxy_settings(args)
        self.config_text = render_haproxy_cfg(settings)
        uploads = [docker.ContainerUploadArgs(file=CONFIG_FILE, content=self.config_text, permissions="0644")]
        ports = [
            docker.ContainerPortArgs(internal=LISTEN_PORT, external=args.config.port),
            docker.ContainerPortArgs(internal=STATS_PORT, external=args.config.stats_port),
        ]
        if settings.tls:
            if args.certificate is None:
                raise ValueError("loadBalancer.tls is enabled but no certificate was given to the load balancer")
            uploads.append(certificate_upload(args.certificate))
            ports.append(docker.ContainerPortArgs(internal=TLS_LISTEN_PORT, external=settings.tls.public_port))
        haproxy = docker.Container(
            f"{name}-haproxy",
            image=image.image_id,
            uploads=uploads,
            ports=ports,
            networks_advanced=[network_attachment(args.network_name, name)],
            restart="unless-stopped",
            destroy_grace_seconds=STOP_GRACE_S,
            # No Docker healthcheck: the image has no HTTP client to run one with.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.depends_on),
                # Two containers cannot publish the same host port, so the old one must
                # go first. The only delete_before_replace on the app's path: nothing
                # depends on it, so nothing cascades.
                delete_before_replace=True,
            ),
        )
        self.container_name = haproxy.name
        self.port = args.config.port
        self.stats_port = args.config.stats_port
        self.tls_port = settings.tls.public_port if settings.tls else None
        self.register_outputs({"containerName": self.container_name, "port": self.port, "statsPort": self.stats_port,
                               "tlsPort": self.tls_port})
