"""The shared uploads volume, mounted read-write at the same path in every app replica."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import NfsConfig, StorageConfig
from components.docker.common import data_options


@dataclass(frozen=True)
class StorageArgs:
    config: StorageConfig
    protect: bool


def data_volume(resource_name: str, nfs: NfsConfig | None, parent: pulumi.Resource, protect: bool) -> docker.Volume:
    """A named volume that holds data (the uploads share, the backup repository): on the
    engine's disk, or on an NFS export when `nfs` is given; protected with `protect`."""
    return docker.Volume(
        resource_name,
        driver="local",
        driver_opts=nfs.local_driver_options if nfs else None,
        opts=data_options(parent, protect),
    )


class Storage(pulumi.ComponentResource):
    """A named volume on the engine; NFS-backed when configured, so several engines share it."""

    volume_name: pulumi.Output[str]
    mount_path: str

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:Storage", name, None, opts)
        nfs = args.config.nfs if args.config.driver == "nfs" else None
        volume = data_volume(f"{name}-shared", nfs, self, args.protect)
        self.volume_name = volume.name
        self.mount_path = args.config.mount_path
        self.register_outputs({"volumeName": self.volume_name, "mountPath": self.mount_path})

    def mount(self) -> docker.ContainerVolumeArgs:
        """The read-write mount every app replica gets."""
        return docker.ContainerVolumeArgs(volume_name=self.volume_name, container_path=self.mount_path, read_only=False)
