"""pgBackRest on the Swarm platform: the repository every member archives into, and what
each Patroni member and its backup scheduler mount (components/backups.py decides the rest,
as on Docker).

- The repository is shared or off-site, never on a node's own disk (the config refuses
  `volume.driver: local` on Swarm): a named volume on an NFS export or a volume plugin that
  every node mounts alike (Swarm creates a service's named volume on each node from the
  mount's options), or an S3/Azure object store that pgBackRest reaches over TLS itself. Whichever member leads
  archives into it, and a node's loss takes no backup with it.
- Each member's pgbackrest.conf is a Swarm config named after its content; it lists the
  other members' pgBackRest TLS servers (`<member>-pgbackrest`) as pg2..pgN, so a backup
  reads a standby's data files, as on Docker. The passphrase and the object-store keys are
  Swarm secrets, files under /run/secrets readable by postgres only, turned into the
  PGBACKREST_REPO1_* variables pgBackRest reads by the `*_FILE` entrypoint
  (render/secret_files.py), so no value is in a service spec. The peer certificates come
  from the stack CA (configs), their keys are secrets.
- Each member and its scheduler share the member's node-local data volume and a socket
  volume (`<member>-socket`) on that node; the scheduler writes its backup report into
  `<member>-backup-reports`, which monitoring's textfile exporter on that node reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pulumi
import pulumi_docker as docker

from components.backups import PEER_TLS, REPORT_DIR, REPOSITORY_MOUNT, SOCKET_DIR, Backups, BackupsArgs, repository_location
from components.certificates import StackCertificateAuthority
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
from components.swarm.common import (
    config_file,
    content_named_config,
    node_local_volume,
    output_config,
    secret_env_files,
    secret_file,
    secret_path,
    service_name,
    swarm_secret,
)
from components.swarm.storage import nfs_volume, shared_volume

RESTORE_SCRIPT = "/usr/local/bin/hastack-restore"
# Swarm mounts secrets under /run/secrets: the keys go there, the certificates stay where
# the shared design puts them (Swarm configs).
SERVER_KEY_SECRET = "pgbackrest-server.key"
CLIENT_KEY_SECRET = "pgbackrest-client.key"
SWARM_PEER_TLS = replace(PEER_TLS, server_key_file=secret_path(SERVER_KEY_SECRET), client_key_file=secret_path(CLIENT_KEY_SECRET))


@dataclass(frozen=True)
class ClusterBackupsArgs:
    config: BackupsConfig
    # The Patroni members' service names, in order.
    members: Sequence[str]
    # The members' data dir (Patroni's data_dir), the same on every member.
    pg_path: str
    # Signs the members' pgBackRest TLS server and client certificates.
    certificate_authority: StackCertificateAuthority
    protect: bool
    # database.restore: the first member bootstraps the cluster from the repository.
    restore: RestoreConfig | None = None


@dataclass(frozen=True)
class MemberBackup:
    """What one Patroni member adds to archive, create replicas from the repository and
    (with a restore) bootstrap from it; its scheduler and TLS server use the same settings."""

    settings: PgBackRestSettings
    archive_parameters: dict[str, str]
    replica_command: str
    # Patroni's bootstrap method when restoring; None: initdb.
    restore_command: str | None
    env: dict[str, str]
    secrets: list[docker.ServiceTaskSpecContainerSpecSecretArgs]
    configs: list[docker.ServiceTaskSpecContainerSpecConfigArgs]
    mounts: list[docker.ServiceTaskSpecContainerSpecMountArgs]
    # The stack CA, the TLS server's and client's certificates (configs) and keys (secrets),
    # for the scheduler and the TLS server beside the member; the member itself needs none.
    peer_configs: list[docker.ServiceTaskSpecContainerSpecConfigArgs]
    peer_secrets: list[docker.ServiceTaskSpecContainerSpecSecretArgs]


class ClusterBackups(pulumi.ComponentResource):
    """The passphrase (components/backups.py), each member's pgbackrest.conf (its peers are
    the others' TLS servers), the secrets, the peer certificates and the repository mount."""

    config: BackupsConfig
    env: dict[str, str]
    secrets: list[docker.ServiceTaskSpecContainerSpecSecretArgs]
    location: str

    def __init__(self, name: str, args: ClusterBackupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:Backups", name, None, opts)
        self.config = args.config
        backups = Backups(name, BackupsArgs(config=args.config, stanza="db", protect=args.protect),
                          pulumi.ResourceOptions(parent=self))
        servers = [tls_server_name(member) for member in args.members]
        self._settings = {
            member: backups.node_settings(args.pg_path, peer_hosts=[s for s in servers if s != tls_server_name(member)],
                                          tls=SWARM_PEER_TLS)
            for member in args.members
        }
        self._confs = {
            member: config_file(content_named_config(f"{name}-{index}-pgbackrest-conf", f"{name}-{index}-pgbackrest-conf",
                                                     render_pgbackrest_conf(self._settings[member]), self),
                                self._settings[member].config_path)
            for index, member in enumerate(args.members)
        }
        # pgBackRest runs as postgres, and the files are the passphrase and the store's keys.
        self.env, self.secrets = secret_env_files(name, backups.secret_env, self, uid=POSTGRES_UID)
        self._peer_configs, self._peer_secrets = _peer_tls_files(name, servers, args.certificate_authority, self)
        self._restore_configs = []
        if args.restore is not None:
            # Every member's settings name the same repository and data dir: one script.
            script = restore_script(RestoreSettings(backup=self._settings[args.members[0]], target=args.restore.target))
            self._restore_configs = [config_file(content_named_config(f"{name}-restore", f"{name}-restore", script, self),
                                                 RESTORE_SCRIPT, 0o555)]
        self.stanza_create = self._settings[args.members[0]].command("stanza-create")
        self.location = repository_location(args.config, repository_volume_text(args.config))
        self.register_outputs({"repository": self.location})

    def repository_mounts(self) -> list[docker.ServiceTaskSpecContainerSpecMountArgs]:
        """The repository volume on its NFS export or volume plugin; nothing for an object store."""
        repo = self.config.repository
        if repo.type != "volume":
            return []
        source, volume = service_name("backups-repository"), repo.volume
        if volume.driver == "plugin":
            return [shared_volume(source, REPOSITORY_MOUNT, volume.plugin.name, dict(volume.plugin.options))]
        return [nfs_volume(source, REPOSITORY_MOUNT, volume.nfs)]

    def member(self, member: str) -> MemberBackup:
        settings = self._settings[member]
        return MemberBackup(
            settings=settings,
            archive_parameters=archive_parameters(settings),
            replica_command=replica_restore_command(settings),
            restore_command=RESTORE_SCRIPT if self._restore_configs else None,
            env=self.env,
            secrets=self.secrets,
            configs=[self._confs[member], *self._restore_configs],
            # What the member, its scheduler and its TLS server share: the repository and the socket dir.
            mounts=[*self.repository_mounts(), node_local_volume(socket_volume(member), SOCKET_DIR)],
            peer_configs=self._peer_configs,
            peer_secrets=self._peer_secrets,
        )


def _peer_tls_files(name: str, servers: Sequence[str], ca: StackCertificateAuthority, parent: pulumi.Resource
                    ) -> tuple[list[docker.ServiceTaskSpecContainerSpecConfigArgs], list[docker.ServiceTaskSpecContainerSpecSecretArgs]]:
    """One server certificate naming every member's TLS server, one client certificate with
    the CN every server admits (tls-server-auth), as on Docker; keys readable by postgres only."""
    server = ca.issue(f"{name}-pgbackrest-server", dns_names=servers, parent=parent)
    client = ca.issue_client(f"{name}-pgbackrest-client", common_name=SWARM_PEER_TLS.client_common_name, parent=parent)
    configs = [
        config_file(output_config(f"{name}-{role}", pem, parent), path)
        for role, pem, path in (("peer-ca", ca.certificate_pem, SWARM_PEER_TLS.ca_file),
                                ("server-cert", server.certificate_pem, SWARM_PEER_TLS.server_certificate_file),
                                ("client-cert", client.certificate_pem, SWARM_PEER_TLS.client_certificate_file))
    ]
    secrets = [secret_file(swarm_secret(f"{name}-{role}", pem, parent), file_name, uid=POSTGRES_UID)
               for role, pem, file_name in (("server-key", server.private_key_pem, SERVER_KEY_SECRET),
                                            ("client-key", client.private_key_pem, CLIENT_KEY_SECRET))]
    return configs, secrets


def tls_server_name(member: str) -> str:
    """The service name (and so the DNS name on the data overlay) of member `member`'s pgBackRest TLS server."""
    return f"{member}-pgbackrest"


def socket_volume(member: str) -> str:
    return f"{member}-socket"


def report_volume(member: str) -> str:
    """The node-local volume member `member`'s scheduler writes its backup report into."""
    return f"{member}-backup-reports"


def report_mount(member: str) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    return node_local_volume(report_volume(member), REPORT_DIR)


def repository_volume_text(config: BackupsConfig) -> str:
    """The repository volume and where it is (its NFS export or its plugin), for
    `repository_location`, which appends the repository's path; "" for an object store."""
    volume, source = config.repository.volume, service_name("backups-repository")
    if volume.nfs:
        return f"volume {source} on nfs {volume.nfs.server}:{volume.nfs.path}"
    if volume.plugin:
        return f"plugin {volume.plugin.name} volume {source}:"
    return ""
