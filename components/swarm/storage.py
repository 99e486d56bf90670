"""Shared volumes on Swarm: named volumes that every node creates the same way (NFS, or a
volume plugin), so a task sees the same files wherever it runs. The uploads share, and
the pgBackRest repository (components/swarm/backups.py)."""

from __future__ import annotations

import pulumi_docker as docker

from components.config import NfsConfig, StorageConfig
from components.swarm.common import service_name


def shared_volume(source: str, target: str, driver: str, options: dict[str, str]) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    """A read-write mount of named volume `source`. Swarm creates a service's named volume
    on each node that runs a task, from these options; no node holds the data itself."""
    return docker.ServiceTaskSpecContainerSpecMountArgs(
        type="volume",
        source=source,
        target=target,
        read_only=False,
        volume_options=docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(driver_name=driver, driver_options=options),
    )


def nfs_volume(source: str, target: str, nfs: NfsConfig) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    """`shared_volume` on an NFS export, through the `local` driver's NFS mount options."""
    return shared_volume(source, target, "local", nfs.local_driver_options)


def shared_mount(config: StorageConfig) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    """The uploads mount every app task gets. (The config rejects a `local` driver on
    Swarm: each node would get its own empty dir.)"""
    source = service_name("uploads")
    if config.driver == "nfs":
        return nfs_volume(source, config.mount_path, config.nfs)
    return shared_volume(source, config.mount_path, config.plugin.name, dict(config.plugin.options))
