"""Building blocks the Swarm components share, so each Swarm rule lives in one place."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_docker as docker

from components.render.secret_files import FILE_SUFFIX, secret_files_entrypoint

# Where Swarm mounts a service's secrets (the `*_FILE` convention points here).
SECRETS_DIR = "/run/secrets"
# The `*_FILE` entrypoint (render/secret_files.py) of the services whose programs read
# their secrets only from the environment (Patroni, pgBackRest).
SECRETS_ENTRYPOINT = "/usr/local/bin/hastack-secret-files"
# Docker's embedded DNS on every overlay network: service names, `tasks.<service>`.
DOCKER_DNS = "127.0.0.11:53"


def service_name(role: str) -> str:
    """The fixed Swarm service name `<project>-<stack>-<role>`: its DNS name on the
    overlays. Services are never auto-named, because other services find them by name
    (`tasks.<name>`, Patroni's connect addresses), and a name never changes in an `up`."""
    return f"{pulumi.get_project()}-{pulumi.get_stack()}-{role}"


def pinned_by_digest(resource_name: str, reference: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """`repo@sha256:...` of a pinned image, pulled on the manager.

    A service given a tag is stored by Swarm with the digest it resolved the tag to
    (moby/moby#28173), so the provider would read back an image that differs from its
    input and plan an update on every `up`; every node also runs exactly these bytes.
    """
    image = docker.RemoteImage(resource_name, name=reference, keep_locally=True, opts=pulumi.ResourceOptions(parent=parent))
    return image.repo_digest


def swarm_secret(resource_name: str, value: pulumi.Input[str], parent: pulumi.Resource) -> docker.Secret:
    """A Swarm secret holding `value`. Secrets are immutable (moby/moby#29882): it is
    auto-named, so a new value is a new secret (create, swap into the services by id,
    delete the old one), and services reference it by id."""
    data = pulumi.Output.secret(pulumi.Output.from_input(value).apply(lambda text: base64.b64encode(text.encode()).decode()))
    return docker.Secret(resource_name, data=data, opts=pulumi.ResourceOptions(parent=parent))


def secret_file(secret: docker.Secret, file_name: str, uid: str | None = None) -> docker.ServiceTaskSpecContainerSpecSecretArgs:
    """Mount `secret` at /run/secrets/<file_name> (a name relative to that directory):
    readable only by `uid` when the image's user is known, else by any user of the task
    (a user's own image may run as any uid; the task itself is the boundary)."""
    return docker.ServiceTaskSpecContainerSpecSecretArgs(
        secret_id=secret.id,
        secret_name=secret.name,
        file_name=file_name,
        file_uid=uid,
        file_mode=0o400 if uid is not None else 0o444,
    )


def secret_env_files(prefix: str, values: Mapping[str, pulumi.Input[str]], parent: pulumi.Resource,
                     uid: str | None = None) -> tuple[dict[str, str], list[docker.ServiceTaskSpecContainerSpecSecretArgs]]:
    """Each `NAME: value` as a Swarm secret mounted at /run/secrets/NAME, and the
    `NAME_FILE` variables that point at them (render/secret_files.py turns them back into
    NAME for programs that read only their environment): the values never appear in the spec."""
    secrets = [secret_file(swarm_secret(f"{prefix}-{env_name.lower().replace('_', '-')}", value, parent), env_name, uid=uid)
               for env_name, value in values.items()]
    return {f"{env_name}{FILE_SUFFIX}": secret_path(env_name) for env_name in values}, secrets


def secret_path(file_name: str) -> str:
    """Where `secret_file(..., file_name)` appears inside the task, for a `NAME_FILE` variable."""
    return f"{SECRETS_DIR}/{file_name}"


def content_named_config(
    resource_name: str, role: str, content: str, parent: pulumi.Resource
) -> docker.ServiceConfig:
    """A Swarm config named after its content. Configs are immutable too; a changed
    content gets a new name, which replaces the config (created before the old one is
    deleted) and so updates every service that mounts it: a rolling update."""
    digest = hashlib.sha256(content.encode()).hexdigest()[:12]
    return docker.ServiceConfig(
        resource_name,
        name=f"{service_name(role)}-{digest}",
        data=base64.b64encode(content.encode()).decode(),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def output_config(resource_name: str, content: pulumi.Input[str], parent: pulumi.Resource) -> docker.ServiceConfig:
    """A Swarm config whose content is known only at deploy time (a certificate): auto-named,
    so new content is a new config, swapped into the services by id."""
    data = pulumi.Output.from_input(content).apply(lambda text: base64.b64encode(text.encode()).decode())
    return docker.ServiceConfig(resource_name, data=data, opts=pulumi.ResourceOptions(parent=parent))


def secret_files_config(name: str, parent: pulumi.Resource) -> docker.ServiceTaskSpecContainerSpecConfigArgs:
    """The `*_FILE` entrypoint at SECRETS_ENTRYPOINT: a service runs `[SECRETS_ENTRYPOINT, program, ...]`."""
    return config_file(content_named_config(f"{name}-secret-files", f"{name}-secret-files", secret_files_entrypoint(), parent),
                       SECRETS_ENTRYPOINT, 0o555)


def config_file(config: docker.ServiceConfig, path: str, mode: int = 0o444) -> docker.ServiceTaskSpecContainerSpecConfigArgs:
    return docker.ServiceTaskSpecContainerSpecConfigArgs(
        config_id=config.id, config_name=config.name, file_name=path, file_mode=mode
    )


def on_node(hostname: str) -> docker.ServiceTaskSpecPlacementArgs:
    """Pin a service's one task to `hostname`. Swarm never moves it: while that node is
    down the task waits, Pending, until it returns."""
    return docker.ServiceTaskSpecPlacementArgs(constraints=[f"node.hostname == {hostname}"])


def node_local_volume(name: str, target: str, read_only: bool = False) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    """A named volume of the `local` driver: each node keeps its own, which is what a
    pinned data member wants (never PGDATA or an etcd data dir on a shared filesystem)."""
    return docker.ServiceTaskSpecContainerSpecMountArgs(
        type="volume",
        source=name,
        target=target,
        read_only=read_only,
        volume_options=docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(driver_name="local"),
    )


def attached(networks: Sequence[docker.Network]) -> list[docker.ServiceTaskSpecNetworksAdvancedArgs]:
    """Network attachments by id: a network's name could be reused by another one."""
    return [docker.ServiceTaskSpecNetworksAdvancedArgs(id=network.id) for network in networks]


def healthcheck(test: Sequence[str], *, interval_s: int, timeout_s: int, retries: int, start_period_s: int) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
    """An exec-form healthcheck. On Swarm it is a liveness check: a task that fails it is
    killed and replaced, and it joins the service's DNS only once healthy."""
    return docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
        tests=["CMD", *test], interval=f"{interval_s}s", timeout=f"{timeout_s}s", retries=retries, start_period=f"{start_period_s}s"
    )


def http_probe(port: int, path: str, python: str = "python") -> list[str]:
    """A probe that needs only python (the reference app's and the Patroni image's);
    `urlopen` raises on a connection error and on HTTP >= 400."""
    return [python, "-c", f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=2)"]


def pinned_member(
    resource_name: str,
    *,
    name: str,
    node: str,
    container_spec: docker.ServiceTaskSpecContainerSpecArgs,
    networks: Sequence[docker.Network],
    restart_delay_s: int,
    parent: pulumi.Resource,
    protect: bool,
    depends_on: Sequence[pulumi.Resource] = (),
) -> docker.Service:
    """One member of a stateful cluster (Patroni, etcd): a one-task service pinned to
    `node`, answering under its own name.

    - dnsrr: the name resolves to the member's task itself; a VIP would hide which member
      answers, and the members' connect addresses must name one.
    - stop-first: the new task opens the same node-local data dir, so the old one must be gone.
    - protected in prod like the Docker data volumes, so a stray destroy cannot take it away.
    """
    return docker.Service(
        resource_name,
        name=name,
        task_spec=docker.ServiceTaskSpecArgs(
            container_spec=container_spec,
            placement=on_node(node),
            networks_advanceds=attached(networks),
            restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay=f"{restart_delay_s}s"),
        ),
        endpoint_spec=docker.ServiceEndpointSpecArgs(mode="dnsrr"),
        update_config=docker.ServiceUpdateConfigArgs(parallelism=1, order="stop-first", failure_action="pause"),
        opts=pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect, depends_on=list(depends_on)),
    )
