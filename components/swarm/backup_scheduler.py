"""Scheduled pgBackRest backups on the Swarm platform: one supercronic service per Patroni
member, pinned to that member's node.

Each scheduler mounts its member's node-local data volume, the socket volume and the
repository at the member's paths, so pgBackRest reads the data files and reaches the
server's socket as on the member itself (both tasks on one node share the named volumes).
Its job (components/render/pgbackrest.py backup_job_script, the same files as on Docker:
components/backups.py scheduler_files) backs up only while its member leads, so after a
failover the new leader's scheduler takes the next backup, and `ensure` a new full one on
the new timeline within minutes. supercronic is built into the database image
(images/postgres/Dockerfile) and passes its environment, the PGBACKREST_REPO1_* secrets the
`*_FILE` entrypoint exported, to its jobs (https://github.com/aptible/supercronic#why-supercronic).

Beside each member runs its pgBackRest TLS server (`pgbackrest server`,
https://pgbackrest.org/command.html#command-server), pinned to the same node over the same
volumes: the leader's job reaches a streaming standby's data dir and socket through it and
backs up from the standby (--backup-standby), falling back to the leader when none answers.
It admits only the client certificate the stack CA issued to the cluster's pgBackRest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.backups import CRONTAB, scheduler_files
from components.render.pgbackrest import tls_server_command
from components.swarm.backups import ClusterBackups, report_mount, tls_server_name
from components.swarm.common import (
    SECRETS_ENTRYPOINT,
    attached,
    config_file,
    content_named_config,
    node_local_volume,
    on_node,
    secret_files_config,
    service_name,
)

# A running backup gets this long to finish its file and release its lock.
STOP_GRACE_S = 60


@dataclass(frozen=True)
class BackupSchedulerArgs:
    backups: ClusterBackups
    # The Patroni component's name (`db`): member `<db>-<index>` is service members[index] on nodes[index].
    database: str
    members: Sequence[str]
    nodes: Sequence[str]
    # The members' image (pinned by digest), which carries supercronic, pgbackrest, psql and jq.
    image: pulumi.Input[str]
    # Where the members mount their node-local data volume `<member>-data`.
    data_mount_path: str
    networks: Sequence[docker.Network]
    depends_on: Sequence[pulumi.Resource] = ()


class BackupScheduler(pulumi.ComponentResource):
    """`backup-<db>-<index>` beside every member: full and diff backups on the configured
    cron expressions, `ensure` every few minutes, and the backup report after each; and
    `pgbackrest-<db>-<index>`, the member's pgBackRest TLS server."""

    service_names: list[str]
    tls_server_names: list[str]

    def __init__(self, name: str, args: BackupSchedulerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:BackupScheduler", name, None, opts)
        self._name, self._args = name, args
        entrypoint = secret_files_config(name, self)
        self.service_names, self.tls_server_names = [], []
        for index, (member, node) in enumerate(zip(args.members, args.nodes, strict=True)):
            backup = args.backups.member(member)
            files = [
                config_file(content_named_config(f"{name}-{index}-{n}", f"{name}-{index}-{n}", f.content, self), f.path,
                            0o555 if f.executable else 0o444)
                for n, f in enumerate(scheduler_files(args.backups.config, backup.settings))
            ]
            data = node_local_volume(f"{member}-data", args.data_mount_path)
            self.service_names.append(self._pinned(
                f"backup-{args.database}-{index}", node,
                docker.ServiceTaskSpecContainerSpecArgs(
                    image=args.image,
                    commands=[SECRETS_ENTRYPOINT, "supercronic", CRONTAB],
                    user="postgres",
                    env=backup.env,
                    secrets=[*backup.secrets, *backup.peer_secrets],
                    configs=[*backup.configs, *backup.peer_configs, *files, entrypoint],
                    mounts=[data, *backup.mounts, report_mount(member)],
                    stop_grace_period=f"{STOP_GRACE_S}s",
                    # Reaps the job's children whatever supercronic does as PID 1.
                    init=True,
                )))
            # The peers' backups reach this member's data dir and socket through it, as
            # `<member>-pgbackrest` (dnsrr: the name is its one task). It reads the data
            # files, never the repository: no passphrase.
            self.tls_server_names.append(self._pinned(
                f"pgbackrest-{args.database}-{index}", node,
                docker.ServiceTaskSpecContainerSpecArgs(
                    image=args.image,
                    commands=tls_server_command(backup.settings),
                    user="postgres",
                    secrets=backup.peer_secrets,
                    configs=[*backup.configs, *backup.peer_configs],
                    mounts=[data, *backup.mounts],
                    init=True,
                ), name=tls_server_name(member), dnsrr=True))
        self.register_outputs({"serviceNames": self.service_names, "tlsServerNames": self.tls_server_names})

    def _pinned(self, resource_name: str, node: str, container: docker.ServiceTaskSpecContainerSpecArgs,
                name: str | None = None, dnsrr: bool = False) -> str:
        """A one-task service on the member's node (its data and socket volumes are that node's),
        stop-first: two schedulers of one member would race for the stanza's lock."""
        name = name or service_name(resource_name)
        docker.Service(
            resource_name,
            name=name,
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=container,
                placement=on_node(node),
                networks_advanceds=attached(self._args.networks),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="5s"),
            ),
            endpoint_spec=docker.ServiceEndpointSpecArgs(mode="dnsrr") if dnsrr else None,
            update_config=docker.ServiceUpdateConfigArgs(parallelism=1, order="stop-first", failure_action="rollback"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self._args.depends_on)),
        )
        return name
