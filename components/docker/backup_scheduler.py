"""Scheduled pgBackRest backups on the Docker platform: one supercronic container and one
pgBackRest TLS server beside each PostgreSQL node.

Each scheduler shares all of its node's volumes at the same paths (`volumes_from`): the
data dir, the repository and the socket dir, so pgBackRest reads the data files and
reaches the server's socket as on the node itself. Its job (components/render/pgbackrest.py
backup_job_script) backs up only while its node is the primary, so a failover, manual or
Patroni's, moves the schedule with it. supercronic is built into the database image
(images/postgres/Dockerfile); it passes the container's environment (the passphrase) to
its jobs and logs them to stdout (https://github.com/aptible/supercronic#why-supercronic).
The crontab runs the job through the backup report (render/backup_report.py), which then
writes when the repository's newest backup finished into REPORT_DIR, for monitoring.

The TLS server (`pgbackrest server`, https://pgbackrest.org/command.html#command-server)
shares the same volumes and answers as `<node>-pgbackrest`: the primary's job reaches a
standby's data dir and socket through it to back up from the standby. It admits only the
client certificate the stack CA issued to the cluster's pgBackRest (tls-server-auth).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.backups import CRONTAB, scheduler_files
from components.config import BackupsConfig
from components.docker.backups import NodeBackup, tls_server_alias
from components.docker.common import network_attachment
from components.render.pgbackrest import tls_server_command

# A running backup gets this long to finish its file and release its lock.
STOP_GRACE_S = 60


@dataclass(frozen=True)
class ScheduledNode:
    alias: str
    container: docker.Container
    backup: NodeBackup


@dataclass(frozen=True)
class BackupSchedulerArgs:
    config: BackupsConfig
    nodes: Sequence[ScheduledNode]
    # The database image, which carries supercronic, pgbackrest, psql and jq.
    image: pulumi.Input[str]
    network_name: pulumi.Input[str]


class BackupScheduler(pulumi.ComponentResource):
    """`backup-<node>` for every node: full and diff backups on the configured cron
    expressions, and `ensure` every few minutes (a new full backup after a promotion or
    a restore); and `pgbackrest-<node>`, the node's pgBackRest TLS server."""

    def __init__(self, name: str, args: BackupSchedulerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:docker:BackupScheduler", name, None, opts)
        self.container_names = [
            docker.Container(
                f"backup-{node.alias}",
                image=args.image,
                entrypoints=["supercronic", CRONTAB],
                command=[],
                user="postgres",
                envs=node.backup.envs,
                volumes=[docker.ContainerVolumeArgs(from_container=node.container.name), *node.backup.report_volumes],
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name)],
                uploads=[
                    *node.backup.uploads,
                    *node.backup.peer_uploads,
                    *(docker.ContainerUploadArgs(file=f.path, content=f.content, permissions="0755" if f.executable else "0644")
                      for f in scheduler_files(args.config, node.backup.settings)),
                ],
                restart="unless-stopped",
                destroy_grace_seconds=STOP_GRACE_S,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[node.container]),
            ).name
            for node in args.nodes
        ]
        self.tls_server_names = [
            docker.Container(
                f"pgbackrest-{node.alias}",
                image=args.image,
                entrypoints=tls_server_command(node.backup.settings),
                command=[],
                user="postgres",
                volumes=[docker.ContainerVolumeArgs(from_container=node.container.name)],
                networks_advanced=[network_attachment(args.network_name, tls_server_alias(node.alias))],
                uploads=[*node.backup.uploads, *node.backup.peer_uploads],
                restart="unless-stopped",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[node.container]),
            ).name
            # A single node has no standby to back up from, and so no peers to serve.
            for node in args.nodes if node.backup.settings.peers
        ]
        self.register_outputs({"containerNames": self.container_names, "tlsServerNames": self.tls_server_names})
