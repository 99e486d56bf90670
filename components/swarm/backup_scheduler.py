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

Backups read the leader's data dir: Swarm runs no pgBackRest TLS server beside the members
yet, so there is no backup from a standby here (docs/swarm.md "Backups").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.backups import CRONTAB, scheduler_files
from components.swarm.backups import ClusterBackups, report_mount
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
    cron expressions, `ensure` every few minutes, and the backup report after each."""

    service_names: list[str]

    def __init__(self, name: str, args: BackupSchedulerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:BackupScheduler", name, None, opts)
        backups = args.backups
        files = [
            config_file(content_named_config(f"{name}-{index}", f"{name}-{index}", f.content, self), f.path,
                        0o555 if f.executable else 0o444)
            for index, f in enumerate(scheduler_files(backups.config, backups.settings))
        ]
        entrypoint = secret_files_config(name, self)
        self.service_names = []
        for index, (member, node) in enumerate(zip(args.members, args.nodes, strict=True)):
            resource_name = f"backup-{args.database}-{index}"
            self.service_names.append(service_name(resource_name))
            docker.Service(
                resource_name,
                name=self.service_names[-1],
                task_spec=docker.ServiceTaskSpecArgs(
                    container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                        image=args.image,
                        commands=[SECRETS_ENTRYPOINT, "supercronic", CRONTAB],
                        user="postgres",
                        env=backups.env,
                        secrets=backups.secrets,
                        configs=[*backups.configs, *files, entrypoint],
                        mounts=[
                            node_local_volume(f"{member}-data", args.data_mount_path),
                            *backups.node_mounts(member),
                            report_mount(member),
                        ],
                        stop_grace_period=f"{STOP_GRACE_S}s",
                        # Reaps the job's children whatever supercronic does as PID 1.
                        init=True,
                    ),
                    # On the member's node: the data and socket volumes are that node's.
                    placement=on_node(node),
                    networks_advanceds=attached(args.networks),
                    restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="5s"),
                ),
                # Stop-first: two schedulers of one member would race for the stanza's lock.
                update_config=docker.ServiceUpdateConfigArgs(parallelism=1, order="stop-first", failure_action="rollback"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            )
        self.register_outputs({"serviceNames": self.service_names})
