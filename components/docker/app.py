"""The app replicas: N identical containers behind the load balancer, updated one at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import AppConfig
from components.docker.common import built_image, env_entry, healthcheck, network_attachment, pulled_image

# A new replica must pass its healthcheck within this, or `pulumi up` stops there and
# leaves the remaining (old) replicas serving.
HEALTHY_TIMEOUT_S = 120
# Time to finish in-flight requests after SIGTERM before the container is killed.
STOP_GRACE_S = 30


@dataclass(frozen=True)
class AppArgs:
    config: AppConfig
    network_name: pulumi.Input[str]
    # The shared uploads volume, mounted read-write in every replica.
    shared_volume: docker.ContainerVolumeArgs
    database_url: pulumi.Input[str]
    database_read_url: pulumi.Input[str]
    # Env name -> generated secret value, the same on every replica.
    secrets: Mapping[str, pulumi.Input[str]]
    # Created (and healthy) before the first replica starts, e.g. the database.
    depends_on: Sequence[pulumi.Resource] = ()
    # Files every replica gets, e.g. the CA its DATABASE_URL verifies the database with.
    files: Sequence[docker.ContainerUploadArgs] = ()


def default_healthcheck_command(port: int, path: str) -> list[str]:
    """Needs nothing but python, which the reference (python-slim) image has and
    curl-less images often lack. `urlopen` raises on connection errors and HTTP >= 400."""
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=2)"
    return ["python", "-c", probe]


class App(pulumi.ComponentResource):
    """`config.replicas` containers of one image, each reachable as `<name>-<index>`."""

    aliases: list[str]
    port: int
    containers: list[docker.Container]
    container_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:App", name, None, opts)
        config = args.config
        image = self._image(name, config)
        shared_env = [
            *(f"{key}={value}" for key, value in sorted(config.env.items())),
            f"PORT={config.port}",
            f"STORAGE_PATH={args.shared_volume.container_path}",
            env_entry("DATABASE_URL", args.database_url),
            env_entry("DATABASE_READ_URL", args.database_read_url),
            *(env_entry(secret_name, value) for secret_name, value in sorted(args.secrets.items())),
        ]
        probe = config.healthcheck_command or default_healthcheck_command(config.port, config.health_path)

        self.aliases = [f"{name}-{index}" for index in range(config.replicas)]
        self.port = config.port
        self.containers = []
        for alias in self.aliases:
            # Rolling update: each replica waits for the previous one. Pulumi replaces
            # create-before-delete, and `wait` holds each create until the new container
            # is healthy, so replica i is only touched once replica i-1's replacement
            # serves. Old containers are removed at the end. Not delete_before_replace:
            # along this chain it would delete every replica before recreating any.
            self.containers.append(
                docker.Container(
                    alias,
                    image=image,
                    envs=[f"NODE_ID={alias}", *shared_env],
                    volumes=[args.shared_volume],
                    uploads=list(args.files),
                    networks_advanced=[network_attachment(args.network_name, alias)],
                    healthcheck=healthcheck(probe, interval_s=2, timeout_s=3, retries=3, start_period_s=HEALTHY_TIMEOUT_S),
                    restart="unless-stopped",
                    wait=True,
                    wait_timeout=HEALTHY_TIMEOUT_S,
                    destroy_grace_seconds=STOP_GRACE_S,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.containers[-1:], *args.depends_on]),
                )
            )
        self.container_names = pulumi.Output.all(*[container.name for container in self.containers])
        self.register_outputs({"aliases": self.aliases, "port": self.port, "containerNames": self.container_names})

    def _image(self, name: str, config: AppConfig) -> pulumi.Output[str]:
        """The image id the replicas run: the pinned `image`, else a local build of `build`."""
        if config.image:
            return pulled_image(f"{name}-image", config.image, self).image_id
        return built_image(f"{name}-image", name, config.build, self)
