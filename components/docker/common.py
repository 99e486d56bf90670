"""Small building blocks the Docker components share, so each rule lives in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_docker as docker

from components.certificates import ServerCertificate

# Shared with the swarm platform; re-exported for the Docker components.
from components.postgres_nodes import (  # noqa: F401
    DATABASE_CA_FILE,
    POSTGRES_PORT,
    POSTGRES_TLS,
    POSTGRES_UID,
    DataLayout,
    connection_urls,
    data_layout,
)


def pulled_image(resource_name: str, reference: str, parent: pulumi.Resource) -> docker.RemoteImage:
    """Pull a pinned image; containers use its `image_id`, so a new tag replaces them.

    `keep_locally`: when the tag changes, the old container still runs the old image
    until its replacement is healthy (create-before-delete), so the image must not be
    removed from the engine under it.
    """
    return docker.RemoteImage(
        resource_name,
        name=reference,
        keep_locally=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def built_image(
    resource_name: str,
    repository: str,
    context: str,
    parent: pulumi.Resource,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
) -> pulumi.Output[str]:
    """Build `context` on the engine, tagged `<project>-<repository>:<stack>`, and return
    the image to run containers from.

    The result is the built image's id, which changes with every content change, so a
    rebuild replaces the containers that run it; the tag alone would not.
    """
    built = docker.Image(
        resource_name,
        image_name=f"{pulumi.get_project()}-{repository}:{pulumi.get_stack()}",
        # Relative to the project directory, where Pulumi runs the program; kept
        # relative so the state does not change between checkouts.
        build=docker.DockerBuildArgs(context=context, args=dict(build_args) if build_args else None, target=target),
        # The local engine runs what it built; there is no registry to push to.
        skip_push=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return built.repo_digest


def data_options(parent: pulumi.Resource, protect: bool) -> pulumi.ResourceOptions:
    """Options for a resource that holds data (DB and etcd data dirs, the shared uploads volume).

    `protect` makes `pulumi destroy` and replacements refuse to delete it; with
    `retain_on_delete` the data also survives if someone unprotects it in state and
    deletes the stack. Both follow `protect` so dev stacks clean up after themselves.
    """
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect)


def network_attachment(network_name: pulumi.Input[str], alias: str) -> docker.ContainerNetworksAdvancedArgs:
    """Join the private network under a stable DNS alias.

    Containers are auto-named (a replacement gets a new name), so everything that
    talks to a container uses its alias, which the replacement takes over.
    """
    return docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=[alias])


def healthcheck(test: Sequence[str], *, interval_s: int, timeout_s: int, retries: int, start_period_s: int) -> docker.ContainerHealthcheckArgs:
    """A Docker exec-form healthcheck; `pulumi-docker`'s `wait` blocks on it."""
    return docker.ContainerHealthcheckArgs(
        tests=["CMD", *test],
        interval=f"{interval_s}s",
        timeout=f"{timeout_s}s",
        retries=retries,
        start_period=f"{start_period_s}s",
    )


def data_node(
    name: str,
    *,
    parent: pulumi.Resource,
    protect: bool,
    network_name: pulumi.Input[str],
    volume_path: str,
    health_test: Sequence[str],
    healthy_timeout_s: int,
    stop_grace_s: int,
    depends_on: Sequence[pulumi.Resource] = (),
    extra_volumes: Sequence[docker.ContainerVolumeArgs] = (),
    **container_args,
) -> docker.Container:
    """A container that owns a data volume and answers under its own name on the
    private network: a postgres node, a Patroni member, an etcd member.

    `healthy_timeout_s` bounds the first start (initdb, a base backup, forming a
    quorum), and `stop_grace_s` a clean shutdown. It is replaced delete-first: two
    processes on one data dir corrupt it (postmaster) or fight over its lock (etcd), so
    the old container must be gone before its replacement mounts the volume. That
    does not cascade, because other nodes depend on it by `depends_on` only, not by
    its outputs.
    """
    data = docker.Volume(f"{name}-data", driver="local", opts=data_options(parent, protect))
    return docker.Container(
        name,
        volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path=volume_path), *extra_volumes],
        networks_advanced=[network_attachment(network_name, name)],
        healthcheck=healthcheck(health_test, interval_s=2, timeout_s=3, retries=5, start_period_s=healthy_timeout_s),
        restart="unless-stopped",
        wait=True,
        wait_timeout=healthy_timeout_s,
        destroy_grace_seconds=stop_grace_s,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on), delete_before_replace=True),
        **container_args,
    )


def postgres_tls_uploads(certificate: ServerCertificate, ca_certificate_pem: pulumi.Input[str]) -> list[docker.ContainerUploadArgs]:
    """The server certificate, its key (secret; mode 0600 owned by postgres, or postgres
    refuses to start) and the stack CA, for every PostgreSQL container."""
    return [
        docker.ContainerUploadArgs(file=POSTGRES_TLS.certificate_file, content=certificate.certificate_pem, permissions="0644"),
        docker.ContainerUploadArgs(file=POSTGRES_TLS.key_file, content=certificate.private_key_pem,
                                   owner=POSTGRES_UID, group=POSTGRES_UID, permissions="0600"),
        docker.ContainerUploadArgs(file=POSTGRES_TLS.ca_file, content=ca_certificate_pem, permissions="0644"),
    ]


def database_ca_upload(ca_certificate_pem: pulumi.Input[str]) -> docker.ContainerUploadArgs:
    """The stack CA where the app's DATABASE_URL (`sslrootcert`) expects it."""
    return docker.ContainerUploadArgs(file=DATABASE_CA_FILE, content=ca_certificate_pem, permissions="0644")


class PostgresCluster(pulumi.ComponentResource):
    """What the rest of the stack needs from a self-hosted PostgreSQL, whichever way it
    fails over (streaming replicas promoted by hand, or Patroni): where to write, where
    to read, and connection strings that follow a promotion. Subclasses declare their
    nodes, then call `_publish` once."""

    writer_endpoint: str
    reader_endpoints: list[str]
    writer_url: pulumi.Output[str]
    reader_url: pulumi.Output[str]
    node_names: pulumi.Output[list[str]]
    # Each node's DNS alias on the private network and its data volume, in the same order.
    node_aliases: list[str]
    data_volume_names: list[pulumi.Output[str]]

    def _publish(
        self,
        *,
        writer_endpoint: str,
        reader_endpoints: list[str],
        every_node: Sequence[str],
        user: str,
        password: pulumi.Input[str],
        database: str,
        nodes: Sequence[docker.Container],
    ) -> None:
        self.writer_endpoint = writer_endpoint
        self.reader_endpoints = reader_endpoints
        self.writer_url, self.reader_url = connection_urls(user, password, every_node, database, ca_file=DATABASE_CA_FILE)
        self.node_names = pulumi.Output.all(*[node.name for node in nodes])
        self.node_aliases = [endpoint.rsplit(":", 1)[0] for endpoint in every_node]
        self.data_volume_names = [node.volumes.apply(lambda volumes: volumes[0].volume_name) for node in nodes]
        self.register_outputs(
            {
                "writerEndpoint": self.writer_endpoint,
                "readerEndpoints": self.reader_endpoints,
                "writerUrl": self.writer_url,
                "readerUrl": self.reader_url,
                "nodeNames": self.node_names,
            }
        )


def env_entry(name: str, value: pulumi.Input[str]) -> pulumi.Output[str]:
    """`NAME=value` for a container's env list; a secret value keeps the entry secret."""
    return pulumi.Output.concat(name, "=", value)
