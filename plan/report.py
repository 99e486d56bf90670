"""Text output of the offline plan: the resource tree with key settings, then the verdicts.

Only settings chosen here are printed (replicas, HA mode, probes, ports, ...); env values,
passwords and connection strings never are, so the output is safe to paste in a PR.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from policy.hastack_policies.config_file import PolicySetting

from .engine import ProgramRun, RecordedResource
from .gate import Outcome, Verdict


def _whole_numbers(value: Any) -> Any:
    """Wire numbers are all floats; show 3 rather than 3.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _docker_container(inputs: dict[str, Any]) -> list[str]:
    settings = []
    ports = [f"{int(p['external'])}->{int(p['internal'])}" for p in inputs.get("ports") or [] if "external" in p]
    settings.append(f"host ports {', '.join(ports)}" if ports else "no host ports")
    healthcheck = inputs.get("healthcheck") or {}
    if healthcheck.get("tests"):
        # The command itself: a probe the image cannot run keeps every replica unhealthy.
        probe = " ".join(str(part) for part in healthcheck["tests"][1:])
        settings.append(f"healthcheck `{probe}` every {healthcheck.get('interval', '?')} x{healthcheck.get('retries', 0)}")
    uploads = [u.get("file", "").rsplit("/", 1)[-1] for u in inputs.get("uploads") or []]
    if uploads:
        settings.append(f"uploads {', '.join(uploads)}")
    return settings


def _container_app(inputs: dict[str, Any]) -> list[str]:
    template = inputs.get("template") or {}
    scale = template.get("scale") or {}
    settings = [f"replicas {scale.get('minReplicas', '?')}..{scale.get('maxReplicas', '?')}"]
    for container in template.get("containers") or []:
        probes = sorted(str(p.get("type")) for p in container.get("probes") or [])
        settings.append(f"{container.get('name')}: {container.get('image')} probes {'+'.join(probes) or 'none'}")
    ingress = (inputs.get("configuration") or {}).get("ingress") or {}
    if ingress:
        settings.append(f"ingress :{ingress.get('targetPort')} {'external' if ingress.get('external') else 'internal'}")
    return settings


def _pg_server(inputs: dict[str, Any]) -> list[str]:
    if str(inputs.get("createMode") or "").lower() == "replica":
        return ["read replica"]
    backup = inputs.get("backup") or {}
    return [
        f"HA {(inputs.get('highAvailability') or {}).get('mode', 'Disabled')}",
        f"backups {backup.get('backupRetentionDays', '?')}d geo {backup.get('geoRedundantBackup', 'Disabled')}",
        f"public access {(inputs.get('network') or {}).get('publicNetworkAccess', 'unset')}",
    ]


def _pg_configuration(inputs: dict[str, Any]) -> list[str]:
    return [f"{inputs.get('configurationName')} = {inputs.get('value')}"]


def _app_gateway(inputs: dict[str, Any]) -> list[str]:
    sku = inputs.get("sku") or {}
    autoscale = inputs.get("autoscaleConfiguration") or {}
    settings = [f"sku {sku.get('tier')}", f"capacity {autoscale.get('minCapacity', sku.get('capacity', '?'))}..{autoscale.get('maxCapacity', '?')}"]
    for probe in inputs.get("probes") or []:
        settings.append(f"probe {probe.get('path')} every {probe.get('interval')}s fall {probe.get('unhealthyThreshold')}")
    return settings


def _storage_account(inputs: dict[str, Any]) -> list[str]:
    return [
        f"https only {inputs.get('enableHttpsTrafficOnly')}",
        f"tls {inputs.get('minimumTlsVersion')}",
        f"public blobs {inputs.get('allowBlobPublicAccess')}",
    ]


def _image(prop: str) -> Callable[[dict[str, Any]], list[str]]:
    return lambda inputs: [str(inputs.get(prop))]


KEY_SETTINGS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "docker:index/container:Container": _docker_container,
    "docker:index/remoteImage:RemoteImage": _image("name"),
    "docker:index/image:Image": _image("imageName"),
    "azure-native:app:ContainerApp": _container_app,
    "azure-native:dbforpostgresql:Server": _pg_server,
    "azure-native:dbforpostgresql:Configuration": _pg_configuration,
    "azure-native:network:ApplicationGateway": _app_gateway,
    "azure-native:storage:StorageAccount": _storage_account,
}


def _describe(resource: RecordedResource, children: list[RecordedResource]) -> str:
    settings = KEY_SETTINGS.get(resource.type, lambda _: [])(_whole_numbers(resource.inputs))
    containers = sum(child.type == "docker:index/container:Container" for child in children)
    if not resource.custom and containers:
        settings.append(f"{containers} container(s)")
    if resource.protect:
        settings.append("protected")
    suffix = f"  [{'; '.join(settings)}]" if settings else ""
    return f"{resource.name} ({resource.type}){suffix}"


def resource_tree(run: ProgramRun) -> list[str]:
    """One line per resource, children indented under their parent component."""
    top = ""  # children of the stack itself
    children: dict[str, list[RecordedResource]] = defaultdict(list)
    urns = {r.urn for r in run.resources}
    for resource in run.resources:
        children[resource.parent if resource.parent in urns else top].append(resource)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for child in children[parent]:
            lines.append("  " * depth + _describe(child, children[child.urn]))
            walk(child.urn, depth + 1)

    walk(top, 1)
    return lines


def _label(verdict: Verdict) -> str:
    if verdict.outcome is Outcome.VIOLATED:
        return "FAIL" if verdict.blocks else "WARN"
    return {Outcome.PASSED: "ok", Outcome.UNKNOWN: "unknown"}[verdict.outcome]


def verdict_lines(run: ProgramRun, verdicts: list[Verdict], settings: dict[str, PolicySetting]) -> list[str]:
    """Per policy: its configured level, then one line per verdict (resource, outcome, message)."""
    names = {r.urn: r.name for r in run.resources}
    by_policy: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in verdicts:
        by_policy[verdict.policy].append(verdict)
    lines = []
    for policy, group in by_policy.items():
        lines.append(f"  {policy} ({settings[policy].enforcement_level.value})")
        for verdict in group:
            subject = names.get(verdict.urn, "stack")
            message = f": {verdict.message}" if verdict.message else ""
            lines.append(f"    {_label(verdict):<8} {subject}{message}")
    return lines


def summary_line(verdicts: list[Verdict]) -> str:
    blocking = sum(v.blocks for v in verdicts)
    advisory = sum(v.outcome is Outcome.VIOLATED and not v.blocks for v in verdicts)
    unknown = sum(v.outcome is Outcome.UNKNOWN for v in verdicts)
    result = "FAIL" if blocking else "PASS"
    return f"{result}: {blocking} mandatory violation(s), {advisory} advisory, {unknown} unknown during preview"
