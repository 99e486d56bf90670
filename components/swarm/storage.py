"""The shared uploads volume on Swarm: one named volume that every node creates the same
way (NFS, or a volume plugin), so every replica sees the same files wherever it runs."""

from __future__ import annotations

import pulumi_docker as docker

from components.config import StorageConfig
from components.swarm.common import service_name


def shared_mount(config: StorageConfig) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    """The read-write mount every app task gets. Swarm creates a service's named volume on
    each node that runs a task, from these options; no node holds the data itself.
    (The config rejects a `local` driver on Swarm: each node would get its own empty dir.)"""
    if config.driver == "nfs":
        driver, options = "local", config.nfs.local_driver_options
    else:
        driver, options = config.plugin.name, dict(config.plugin.options)
    return docker.ServiceTaskSpecContainerSpecMountArgs(
        type="volume",
        source=service_name("uploads"),
        target=config.mount_path,
        read_only=False,
        volume_options=docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(driver_name=driver, driver_options=options),
    )
