"""etcd-leader-placement: one supercronic task that, every few seconds, moves etcd's
leadership off the Patroni leader's node (the job: components/swarm/etcd_leader_job.py).

A node that runs both leaders costs a failover about two more seconds when it dies: etcd
elects a new leader first, which restarts Patroni's leader lease at its full TTL
(docs/swarm.md, "Where the time of a node loss goes"). The job only reads the members'
status and the leader key, and calls etcd's MoveLeader when both leaders share a node; it
writes nothing else. Any node may run it: it reaches every etcd member on the data overlay,
and Swarm reschedules it when its node is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.render.patroni import leader_key
from components.swarm import etcd_leader_job
from components.swarm.common import attached, config_file, content_named_config, service_name

JOB_PATH = "/etc/hastack/etcd-leader-job.py"
CRONTAB_PATH = "/etc/hastack/etcd-leader-crontab"
# supercronic's seconds field (seven fields: https://github.com/aptible/supercronic#crontab-format);
# a run takes well under a second, and supercronic never overlaps two runs of one job.
EVERY_S = 5


def job_crontab(every_s: int = EVERY_S) -> str:
    return f"*/{every_s} * * * * * * python3 {JOB_PATH}\n"


def job_env(etcd_members: Sequence[str], etcd_nodes: Sequence[str], etcd_client_urls: Sequence[str],
            patroni_members: Sequence[str], patroni_nodes: Sequence[str], scope: str) -> dict[str, str]:
    """The job's environment (etcd_leader_job.Topology), member by member in node order."""
    def pairs(names: Sequence[str], values: Sequence[str]) -> str:
        return ",".join(f"{name}={value}" for name, value in zip(names, values, strict=True))

    return {
        "ETCD_MEMBER_NODES": pairs(etcd_members, etcd_nodes),
        "ETCD_CLIENT_URLS": pairs(etcd_members, etcd_client_urls),
        "PATRONI_MEMBER_NODES": pairs(patroni_members, patroni_nodes),
        "PATRONI_LEADER_KEY": leader_key(scope),
    }


@dataclass(frozen=True)
class EtcdLeaderPlacementArgs:
    etcd_members: Sequence[str]  # the etcd members' names (their service names)
    etcd_nodes: Sequence[str]
    etcd_client_urls: Sequence[str]
    patroni_members: Sequence[str]  # the Patroni members' names (their service names)
    patroni_nodes: Sequence[str]
    scope: str  # the Patroni cluster's scope
    # The Patroni members' image (pinned by digest): it carries supercronic and python3.
    image: pulumi.Input[str]
    networks: Sequence[docker.Network]
    depends_on: Sequence[pulumi.Resource] = ()


class EtcdLeaderPlacement(pulumi.ComponentResource):
    service_name: str

    def __init__(self, name: str, args: EtcdLeaderPlacementArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:swarm:EtcdLeaderPlacement", name, None, opts)
        job = content_named_config(f"{name}-job", f"{name}-job", Path(etcd_leader_job.__file__).read_text(), self)
        crontab = content_named_config(f"{name}-crontab", f"{name}-crontab", job_crontab(), self)
        self.service_name = service_name(name)
        docker.Service(
            name,
            name=self.service_name,
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=args.image,
                    commands=["supercronic", CRONTAB_PATH],
                    user="postgres",
                    env=job_env(args.etcd_members, args.etcd_nodes, args.etcd_client_urls,
                                args.patroni_members, args.patroni_nodes, args.scope),
                    configs=[config_file(job, JOB_PATH), config_file(crontab, CRONTAB_PATH)],
                    # Reaps the job's children whatever supercronic does as PID 1.
                    init=True,
                ),
                networks_advanceds=attached(args.networks),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="5s"),
            ),
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
            # One task at a time: two would only both ask etcd, but one is all it needs.
            update_config=docker.ServiceUpdateConfigArgs(parallelism=1, order="stop-first", failure_action="rollback"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"serviceName": self.service_name})
