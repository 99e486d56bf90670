"""Small building blocks the Docker components share, so each rule lives in one place."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_docker as docker


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


def data_options(parent: pulumi.Resource, protect: bool) -> pulumi.ResourceOptions:
    """Options for a resource that holds data (DB data dirs, the shared uploads volume).

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


def env_entry(name: str, value: pulumi.Input[str]) -> pulumi.Output[str]:
    """`NAME=value` for a container's env list; a secret value keeps the entry secret."""
    return pulumi.Output.concat(name, "=", value)
