"""Type tokens and readers for the resource props the rules look at.

Props arrive as the engine hands them to a pack: camelCase input names, secrets
unwrapped, and during preview some values unknown. Reading an unknown value through
pulumi_policy's proxy raises `UnknownValueError`; the pack (and the plan) turn that into
an advisory "can't be checked during preview" note instead of a verdict. The helpers here
skip unknown list items only where an unknown item cannot change the verdict.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import UnknownValueError

# ---------------------------------------------------------------- type tokens

DOCKER_CONTAINER = "docker:index/container:Container"
DOCKER_VOLUME = "docker:index/volume:Volume"
DOCKER_REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DOCKER_BUILT_IMAGE = "docker:index/image:Image"
# Swarm: a service (its tasks run wherever the scheduler places them) and its configs.
DOCKER_SERVICE = "docker:index/service:Service"
DOCKER_SERVICE_CONFIG = "docker:index/serviceConfig:ServiceConfig"
AZURE_CONTAINER_APP = "azure-native:app:ContainerApp"
AZURE_PG_SERVER = "azure-native:dbforpostgresql:Server"
AZURE_PG_CONFIGURATION = "azure-native:dbforpostgresql:Configuration"
# The app's database on the server: a change of its charset or collation replaces it.
AZURE_PG_DATABASE = "azure-native:dbforpostgresql:Database"
AZURE_APP_GATEWAY = "azure-native:network:ApplicationGateway"
AZURE_WAF_POLICY = "azure-native:network:WebApplicationFirewallPolicy"
AZURE_STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
AZURE_FILE_SHARE = "azure-native:storage:FileShare"
AZURE_KEY_VAULT = "azure-native:keyvault:Vault"

# The hastack components that own Docker containers. A container's role (app replica,
# PostgreSQL node, load balancer) is the component it belongs to, which its URN names:
# urn:pulumi:<stack>::hastack::pulumi:pulumi:Stack$hastack:docker:App$docker:index/container:Container::app-0
DOCKER_APP_COMPONENT = "hastack:docker:App"
DOCKER_DATABASE_COMPONENT = "hastack:docker:Database"
# `database.failover: patroni`: every member runs PostgreSQL. Its etcd cluster
# (hastack:docker:Etcd) holds Patroni's state, not the database, so it is no DB node.
DOCKER_PATRONI_DATABASE_COMPONENT = "hastack:docker:PatroniDatabase"
DOCKER_LOAD_BALANCER_COMPONENT = "hastack:docker:LoadBalancer"
# The swarm platform's components: the same roles, as services.
SWARM_APP_COMPONENT = "hastack:swarm:App"
SWARM_LOAD_BALANCER_COMPONENT = "hastack:swarm:LoadBalancer"
SWARM_PATRONI_DATABASE_COMPONENT = "hastack:swarm:PatroniDatabase"
SWARM_ETCD_COMPONENT = "hastack:swarm:Etcd"


def known_items(values: Sequence[Any] | None) -> Iterator[Any]:
    """The list items that are known now; unknown ones (preview) are skipped."""
    for index in range(len(values or ())):
        try:
            yield values[index]
        except UnknownValueError:
            continue


# ---------------------------------------------------------------- docker containers


def docker_env(props: Mapping[str, Any]) -> dict[str, str]:
    """A container's `envs` (a list of `KEY=VALUE`) as a dict, unknown entries skipped."""
    env = {}
    for entry in known_items(props.get("envs")):
        name, _, value = str(entry).partition("=")
        env[name] = value
    return env


def uploaded_files(props: Mapping[str, Any]) -> dict[str, str]:
    """Files uploaded into a container: path -> text content (base64 content is not read)."""
    return {str(u.get("file")): str(u.get("content") or "") for u in known_items(props.get("uploads"))}


def owning_component(urn: str) -> str | None:
    """The innermost hastack component type in a URN's type chain, if any."""
    type_chain = urn.split("::")[2] if urn.count("::") >= 3 else ""
    owners = [t for t in type_chain.split("$")[:-1] if t.startswith("hastack:")]
    return owners[-1] if owners else None


def is_app_container(urn: str) -> bool:
    """An app replica: a Docker container, or the Swarm app service (all its replicas)."""
    return owning_component(urn) in {DOCKER_APP_COMPONENT, SWARM_APP_COMPONENT}


def is_load_balancer_container(urn: str) -> bool:
    """The Docker HAProxy container, or a config of the Swarm HAProxy service."""
    return owning_component(urn) in {DOCKER_LOAD_BALANCER_COMPONENT, SWARM_LOAD_BALANCER_COMPONENT}


def is_database_container(urn: str) -> bool:
    """A PostgreSQL node: a primary or replica (manual failover), or a Patroni member
    (a container on Docker, a pinned service on Swarm)."""
    return owning_component(urn) in {DOCKER_DATABASE_COMPONENT, DOCKER_PATRONI_DATABASE_COMPONENT, SWARM_PATRONI_DATABASE_COMPONENT}


def is_swarm_data_member(urn: str) -> bool:
    """A Swarm service whose one task keeps data on its node: a Patroni or etcd member."""
    return owning_component(urn) in {SWARM_PATRONI_DATABASE_COMPONENT, SWARM_ETCD_COMPONENT}


# ---------------------------------------------------------------- swarm services


def container_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """A service's `taskSpec.containerSpec` (what each of its tasks runs)."""
    return (props.get("taskSpec") or {}).get("containerSpec") or {}


def service_replicas(props: Mapping[str, Any]) -> int | None:
    """A replicated service's task count; None for a global one (a task per node)."""
    mode = props.get("mode") or {}
    if mode.get("global"):
        return None
    return int((mode.get("replicated") or {}).get("replicas") or 1)  # Swarm's default is 1


def placement_constraints(props: Mapping[str, Any]) -> list[str]:
    return [str(c) for c in known_items(((props.get("taskSpec") or {}).get("placement") or {}).get("constraints"))]


def swarm_config_text(props: Mapping[str, Any]) -> str:
    """A Swarm config's content (its `data` is base64)."""
    try:
        return base64.b64decode(str(props.get("data") or ""), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def mounted_configs(service_props: Mapping[str, Any], texts_by_name: Mapping[str, str]) -> dict[str, str]:
    """The Swarm configs a service mounts: path -> content, from the stack's configs by
    name (`texts_by_name`); a config whose name is unknown now (preview) is skipped."""
    files = {}
    for entry in known_items(container_spec(service_props).get("configs")):
        try:
            name, path = entry.get("configName"), entry.get("fileName")
        except UnknownValueError:
            continue
        if isinstance(name, str) and name in texts_by_name:
            files[str(path)] = texts_by_name[name]
    return files


# ---------------------------------------------------------------- azure


# `replicationRole` values the Flexible Server API reports for a read replica.
_REPLICA_ROLES = {"asyncreplica", "geoasyncreplica"}


def is_read_replica(props: Mapping[str, Any]) -> bool:
    """A Flexible Server read replica: HA and backups are the primary's business.

    Resource rules see inputs, where `createMode: Replica` says it. Stack rules see the
    resource's state after preview/update, where the create-only `createMode` may be
    absent and the API's `replicationRole` says it instead."""
    if "createMode" in props:
        return str(props.get("createMode")).lower() == "replica"
    return str(props.get("replicationRole") or "").lower() in _REPLICA_ROLES


# `createMode` values that build a Flexible Server from a backup.
_RESTORE_MODES = {"pointintimerestore", "georestore"}


def is_being_restored(props: Mapping[str, Any]) -> bool:
    """A Flexible Server declared as the restore request itself: Azure applies no HA to it.

    hastack's restore run sends no admin password (the restored server keeps the source's);
    the run after it adds the password, while `createMode` keeps its restore value (it is
    create-only and ignored), so the password is what tells the two runs apart."""
    return str(props.get("createMode") or "").lower() in _RESTORE_MODES and "administratorLoginPassword" not in props


def app_containers(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers of a Container App's template."""
    return list(known_items((props.get("template") or {}).get("containers")))


# ---------------------------------------------------------------- images

# A tag is what follows the last ':' of the last path part; a registry port is not a tag.
_TAG = re.compile(r":([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")
# A local image id, which Docker containers get from a pulled or built image resource.
_IMAGE_ID = re.compile(r"^sha256:[a-f0-9]{64}$")


def image_pin_problem(image: str) -> str | None:
    """Why `image` is not pinned, or None when it is (an id, a digest, or a tag other than latest)."""
    if "@sha256:" in image or _IMAGE_ID.match(image):
        return None
    tag = _TAG.search(image.rsplit("/", 1)[-1])
    if tag is None:
        return "has no tag, so it means ':latest'"
    if tag.group(1) == "latest":
        return "uses the moving tag 'latest'"
    return None
