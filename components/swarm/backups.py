"""pgBackRest on the Swarm platform: the repository every member archives into, and what
each Patroni member and its backup scheduler mount (components/backups.py decides the rest,
as on Docker).

- The repository is shared or off-site, never on a node's own disk (the config refuses
  `volume.driver: local` on Swarm): a named volume on an NFS export that every node mounts
  alike (Swarm creates a service's named volume on each node from the mount's options), or
  an S3/Azure object store that pgBackRest reaches over TLS itself. Whichever member leads
  archives into it, and a node's loss takes no backup with it.
- pgbackrest.conf is a Swarm config named after its content; the passphrase and the
  object-store keys are Swarm secrets, files under /run/secrets readable by postgres only,
  turned into the PGBACKREST_REPO1_* variables pgBackRest reads by the `*_FILE` entrypoint
  (render/secret_files.py), so no value is in a service spec.
- Each member and its scheduler share the member's node-local data volume and a socket
  volume (`<member>-socket`) on that node; the scheduler writes its backup report into
  `<member>-backup-reports`, which monitoring's textfile exporter on that node reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.backups import REPORT_DIR, REPOSITORY_MOUNT, SOCKET_DIR, Backups, BackupsArgs, repository_location
from components.config import BackupsConfig, RestoreConfig
from components.postgres_nodes import POSTGRES_UID
from components.render.pgbackrest import (
    PgBackRestSettings,
    RestoreSettings,
    archive_parameters,
    render_pgbackrest_conf,
    replica_restore_command,
    restore_script,
)
from components.swarm.common import config_file, content_named_config, node_local_volume, secret_env_files, service_name
from components.swarm.storage import nfs_volume

RESTORE_SCRIPT = "/usr/local/bin/hastack-restore"


@dataclass(frozen=True)
class ClusterBackupsArgs:
    config: BackupsConfig
    # The members' data dir (Patroni's data_dir), the same on every member.
    pg_path: str
    protect: bool
    # database.restore: the first member bootstraps the cluster from the repository.
    restore: RestoreConfig | None = None


@dataclass(frozen=True)
class MemberBackup:
    """What one Patroni member adds to archive, create replicas from the repository and
    (with a restore) bootstrap from it."""

    archive_parameters: dict[str, str]
    replica_command: str
    # Run by the post-bootstrap script: archiving works from the first segment.
    stanza_create: str
    # Patroni's bootstrap method when restoring; None: initdb.
    restore_command: str | None
    env: dict[str, str]
    secrets: list[docker.ServiceTaskSpecContainerSpecSecretArgs]
    configs: list[docker.ServiceTaskSpecContainerSpecConfigArgs]
    mounts: list[docker.ServiceTaskSpecContainerSpecMountArgs]


class ClusterBackups(pulumi.ComponentResource):
    """The passphrase (components/backups.py), the rendered pgbackrest.conf, the secrets and the repository mount."""

    config: BackupsConfig
    settings: PgBackRestSettings
    env: dict[str, str]
    secrets: list[docker.ServiceTaskSpecContainerSpecSecretArgs]
    configs: list[docker.ServiceTaskSpecContainerSpecConfigArgs]

    def __init__(self, name: str, args: ClusterBackupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:Backups", name, None, opts)
        self.config = args.config
        backups = Backups(name, BackupsArgs(config=args.config, stanza="db", protect=args.protect),
                          pulumi.ResourceOptions(parent=self))
        # No peers: every member backs up its own data dir while it leads (docs/swarm.md "Backups").
        self.settings = backups.node_settings(args.pg_path)
        conf = content_named_config(f"{name}-pgbackrest-conf", f"{name}-pgbackrest-conf",
                                    render_pgbackrest_conf(self.settings), self)
        self.configs = [config_file(conf, self.settings.config_path)]
        # pgBackRest runs as postgres, and the files are the passphrase and the store's keys.
        self.env, self.secrets = secret_env_files(name, backups.secret_env, self, uid=POSTGRES_UID)
        self._restore_configs = []
        if args.restore is not None:
            script = restore_script(RestoreSettings(backup=self.settings, target=args.restore.target))
            self._restore_configs = [config_file(content_named_config(f"{name}-restore", f"{name}-restore", script, self),
                                                 RESTORE_SCRIPT, 0o555)]
        self.location = repository_location(args.config, repository_volume_text(args.config))
        self.register_outputs({"repository": self.location})

    def repository_mounts(self) -> list[docker.ServiceTaskSpecContainerSpecMountArgs]:
        """The repository volume on its NFS export; nothing for an object store."""
        repo = self.config.repository
        if repo.type != "volume":
            return []
        return [nfs_volume(service_name("backups-repository"), REPOSITORY_MOUNT, repo.volume.nfs)]

    def node_mounts(self, member: str) -> list[docker.ServiceTaskSpecContainerSpecMountArgs]:
        """What member `member` and its scheduler both mount: the repository and the socket dir."""
        return [*self.repository_mounts(), node_local_volume(socket_volume(member), SOCKET_DIR)]

    def member(self, member: str) -> MemberBackup:
        settings = self.settings
        return MemberBackup(
            archive_parameters=archive_parameters(settings),
            replica_command=replica_restore_command(settings),
            stanza_create=settings.command("stanza-create"),
            restore_command=RESTORE_SCRIPT if self._restore_configs else None,
            env=self.env,
            secrets=self.secrets,
            configs=[*self.configs, *self._restore_configs],
            mounts=self.node_mounts(member),
        )


def socket_volume(member: str) -> str:
    return f"{member}-socket"


def report_volume(member: str) -> str:
    """The node-local volume member `member`'s scheduler writes its backup report into."""
    return f"{member}-backup-reports"


def report_mount(member: str) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    return node_local_volume(report_volume(member), REPORT_DIR)


def repository_volume_text(config: BackupsConfig) -> str:
    """The repository volume and its export, for `repository_location`."""
    nfs = config.repository.volume.nfs
    return f"volume {service_name('backups-repository')} on nfs {nfs.server}:{nfs.path}" if nfs else ""
