"""pgBackRest on the Docker platform: the repository volume, what every PostgreSQL node
mounts and uploads to archive into it, and one scheduler container per node.

- The repository (`backups.repository.type: volume`) is a dedicated named volume, on the
  `local` driver or, with `driver: nfs`, on another machine's NFS export, so the backups
  outlive this engine. With `s3` or `azure` there is no volume: pgBackRest talks to the
  object store over TLS itself.
- Every node (primary, replicas, Patroni members) gets the same pgbackrest.conf, the
  secret environment and the mounts, because any of them may be the primary that
  archives; a standby with archive_mode=on archives nothing.
- Each node has a scheduler container beside it (backup_scheduler.py). With monitoring,
  the schedulers write their backup reports (render/backup_report.py) into one `reports`
  volume, which monitoring's textfile exporter reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.backups import REPOSITORY_MOUNT, SOCKET_DIR, Backups
from components.config import BackupsConfig
from components.docker.common import data_options, env_entry
from components.docker.storage import data_volume
from components.render.pgbackrest import PgBackRestSettings, archive_parameters, render_pgbackrest_conf

CONF_FILE = "/etc/pgbackrest/pgbackrest.conf"
# Where the schedulers write the backup report; the image makes it the postgres user's, and
# Docker gives a new, empty volume mounted there that owner and mode (images/postgres/Dockerfile).
REPORT_DIR = "/var/lib/hastack/backup-reports"


@dataclass(frozen=True)
class BackupRepositoryArgs:
    config: BackupsConfig
    protect: bool
    # A volume the schedulers' backup reports go into, for monitoring to read.
    reports: bool = False


class BackupRepository(pulumi.ComponentResource):
    """The repository's volume (type volume), or nothing to mount (s3, azure)."""

    volume_name: pulumi.Output[str] | None
    report_volume_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: BackupRepositoryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:BackupRepository", name, None, opts)
        repo = args.config.repository
        self.volume_name = None
        if repo.type == "volume":
            nfs = repo.volume.nfs if repo.volume.driver == "nfs" else None
            self.volume_name = data_volume(f"{name}-repository", nfs, self, args.protect).name
        # Rewritten after every job from the repository itself, but protected like every
        # volume of the stack: the schedulers and the exporter mount it.
        self.report_volume_name = (docker.Volume(f"{name}-reports", driver="local", opts=data_options(self, args.protect)).name
                                   if args.reports else None)
        self.register_outputs({"volumeName": self.volume_name, "reportVolumeName": self.report_volume_name})

    def mounts(self) -> list[docker.ContainerVolumeArgs]:
        if self.volume_name is None:
            return []
        return [docker.ContainerVolumeArgs(volume_name=self.volume_name, container_path=REPOSITORY_MOUNT)]

    def report_mounts(self) -> list[docker.ContainerVolumeArgs]:
        if self.report_volume_name is None:
            return []
        return [docker.ContainerVolumeArgs(volume_name=self.report_volume_name, container_path=REPORT_DIR)]


@dataclass(frozen=True)
class ClusterBackups:
    """What a database component needs to archive, back up and restore its cluster."""

    config: BackupsConfig
    backups: Backups
    repository: BackupRepository
    protect: bool


@dataclass(frozen=True)
class NodeBackup:
    """What one PostgreSQL node needs to archive: settings, files, env and mounts."""

    settings: PgBackRestSettings
    archive_parameters: dict[str, str]
    uploads: list[docker.ContainerUploadArgs]
    envs: list[pulumi.Output[str]]
    volumes: list[docker.ContainerVolumeArgs]
    # The scheduler's own: where its backup reports go.
    report_volumes: list[docker.ContainerVolumeArgs]


def node_backup(alias: str, cluster: ClusterBackups, pg_path: str, parent: pulumi.Resource) -> NodeBackup:
    """The pgBackRest part of node `alias`, including the socket volume its scheduler shares."""
    backups, repository = cluster.backups, cluster.repository
    settings = backups.node_settings(pg_path)
    # Protected like the data beside it, so the node and its scheduler never lose it one at a time.
    socket = docker.Volume(f"{alias}-socket", driver="local", opts=data_options(parent, cluster.protect))
    return NodeBackup(
        settings=settings,
        archive_parameters=archive_parameters(settings),
        uploads=[docker.ContainerUploadArgs(file=CONF_FILE, content=render_pgbackrest_conf(settings), permissions="0644")],
        envs=[env_entry(name, value) for name, value in backups.secret_env.items()],
        volumes=[*repository.mounts(), docker.ContainerVolumeArgs(volume_name=socket.name, container_path=SOCKET_DIR)],
        report_volumes=repository.report_mounts(),
    )
