"""pgBackRest on the Docker platform: the repository volume, what every PostgreSQL node
mounts and uploads to archive into it, and one scheduler container per node.

- The repository (`backups.repository.type: volume`) is a dedicated named volume, on the
  `local` driver or, with `driver: nfs`, on another machine's NFS export, so the backups
  outlive this engine. With `s3` or `azure` there is no volume: pgBackRest talks to the
  object store over TLS itself.
- Every node (primary, replicas, Patroni members) gets the same pgbackrest.conf, the
  secret environment and the mounts, because any of them may be the primary that
  archives; a standby with archive_mode=on archives nothing.
- Each node has a scheduler container and a pgBackRest TLS server beside it
  (backup_scheduler.py). Every node's pgbackrest.conf lists the other nodes' servers as
  pg2..pgN, so the primary's job copies the data files from a streaming standby; the
  servers and clients authenticate each other with certificates from the stack CA.
  With monitoring, the schedulers write their backup reports (render/backup_report.py)
  into one `reports` volume, which monitoring's textfile exporter reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.backups import PEER_TLS, REPORT_DIR, REPOSITORY_MOUNT, SOCKET_DIR, Backups
from components.certificates import StackCertificateAuthority
from components.config import BackupsConfig
from components.docker.common import POSTGRES_UID, data_options, env_entry
from components.docker.storage import data_volume
from components.render.pgbackrest import PgBackRestSettings, archive_parameters, render_pgbackrest_conf

CONF_FILE = "/etc/pgbackrest/pgbackrest.conf"


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
    # The CA and the TLS server's and client's certificates (keys secret), for the
    # containers beside the node that talk to its peers; the node itself needs none.
    peer_uploads: list[docker.ContainerUploadArgs]


def tls_server_alias(alias: str) -> str:
    """The DNS name of node `alias`'s pgBackRest TLS server on the private network."""
    return f"{alias}-pgbackrest"


def cluster_node_backups(name: str, aliases: Sequence[str], cluster: ClusterBackups, pg_path: str,
                         ca: StackCertificateAuthority, parent: pulumi.Resource) -> dict[str, NodeBackup]:
    """The pgBackRest part of every node of cluster `name`, by alias: each lists the
    others' TLS servers as its peers, and all share one server and one client certificate."""
    servers = [tls_server_alias(alias) for alias in aliases]
    if len(aliases) == 1:  # no standby to back up from: no TLS server, no certificates
        return {aliases[0]: _node_backup(aliases[0], cluster, pg_path, [], [], parent)}
    server = ca.issue(f"{name}-pgbackrest-server", dns_names=servers, parent=parent)
    client = ca.issue_client(f"{name}-pgbackrest-client", common_name=PEER_TLS.client_common_name, parent=parent)
    peer_uploads = [
        docker.ContainerUploadArgs(file=PEER_TLS.ca_file, content=ca.certificate_pem, permissions="0644"),
        docker.ContainerUploadArgs(file=PEER_TLS.server_certificate_file, content=server.certificate_pem, permissions="0644"),
        docker.ContainerUploadArgs(file=PEER_TLS.client_certificate_file, content=client.certificate_pem, permissions="0644"),
        *(docker.ContainerUploadArgs(file=path, content=pem, owner=POSTGRES_UID, group=POSTGRES_UID, permissions="0600")
          for path, pem in ((PEER_TLS.server_key_file, server.private_key_pem),
                            (PEER_TLS.client_key_file, client.private_key_pem))),
    ]
    return {alias: _node_backup(alias, cluster, pg_path, [s for s in servers if s != tls_server_alias(alias)],
                                peer_uploads, parent)
            for alias in aliases}


def _node_backup(alias: str, cluster: ClusterBackups, pg_path: str, peer_hosts: list[str],
                 peer_uploads: list[docker.ContainerUploadArgs], parent: pulumi.Resource) -> NodeBackup:
    """The pgBackRest part of node `alias`, including the socket volume its scheduler shares."""
    backups, repository = cluster.backups, cluster.repository
    settings = backups.node_settings(pg_path, peer_hosts=peer_hosts)
    # Protected like the data beside it, so the node and its scheduler never lose it one at a time.
    socket = docker.Volume(f"{alias}-socket", driver="local", opts=data_options(parent, cluster.protect))
    return NodeBackup(
        settings=settings,
        archive_parameters=archive_parameters(settings),
        uploads=[docker.ContainerUploadArgs(file=CONF_FILE, content=render_pgbackrest_conf(settings), permissions="0644")],
        envs=[env_entry(name, value) for name, value in backups.secret_env.items()],
        volumes=[*repository.mounts(), docker.ContainerVolumeArgs(volume_name=socket.name, container_path=SOCKET_DIR)],
        report_volumes=repository.report_mounts(),
        peer_uploads=peer_uploads,
    )
