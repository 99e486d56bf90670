"""The pack over its real contract: started as the Pulumi CLI starts a Python pack, then
driven through the Analyzer gRPC service with the stubs the pulumi SDK ships.

The CLI (`NewPolicyAnalyzer`, legacy path used for python) runs the
`pulumi-analyzer-policy-python` shim with the pack directory as working directory; the
shim runs `<virtualenv>/bin/python -u -m pulumi.policy <engine address> .`, where
`virtualenv` is PulumiPolicy.yaml's runtime option relative to the pack directory. The
environment carries PULUMI_CONFIG (the stack config as JSON), PULUMI_PROJECT,
PULUMI_STACK and PULUMI_DRY_RUN. The pack prints its port on stdout.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
from pathlib import Path

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.hastack_policies import PACK_NAME, POLICIES

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "policy"
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "remediate": analyzer_pb2.REMEDIATE,
    "disabled": analyzer_pb2.DISABLED,
}
STACK_CONFIG = {"hastack:platform": "docker", "hastack:app": json.dumps({"env": {"API_TOKEN": "abc123"}})}


def pack_python() -> Path:
    runtime = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())["runtime"]
    assert runtime["name"] == "python"
    return (PACK_DIR / runtime["options"]["virtualenv"]).resolve() / "bin" / "python"


@pytest.fixture(scope="module")
def analyzer():
    python = pack_python()
    assert python.exists(), f"PulumiPolicy.yaml's virtualenv has no {python}"
    env = {
        **os.environ,
        "PULUMI_CONFIG": json.dumps(STACK_CONFIG),
        "PULUMI_PROJECT": "hastack",
        "PULUMI_STACK": "prod",
        "PULUMI_DRY_RUN": "true",
    }
    pack = subprocess.Popen(
        [str(python), "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=PACK_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([pack.stdout], [], [], 60)
        assert ready, "the pack printed no port within 60 s"
        port = int(pack.stdout.readline().decode().strip() or 0)
        assert port, f"no port; stderr: {pack.stderr.read().decode() if pack.poll() is not None else ''}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        pack.terminate()
        pack.wait(timeout=10)


@pytest.fixture(scope="module")
def configured(analyzer):
    """The CLI's opening sequence with `--policy-pack-config policy/config.prod.json`."""
    try:
        analyzer.Handshake(analyzer_pb2.AnalyzerHandshakeRequest(engine_address="127.0.0.1:1", root_directory=str(PACK_DIR), program_directory=str(PACK_DIR)))
    except grpc.RpcError as err:
        # The CLI falls back to the old protocol when a pack does not implement Handshake.
        assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    analyzer.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(stack="prod", project="hastack", organization="acme"))
    prod_config = json.loads((PACK_DIR / "config.prod.json").read_text())
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, entry in prod_config.items():
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        config = request.policyConfig[name]
        config.enforcementLevel = LEVELS[entry.pop("enforcementLevel")]
        config.properties.update(entry)
    analyzer.Configure(request)
    return analyzer


def _struct(props: dict) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


def analyze(stub, type_token: str, name: str, props: dict, *, protect: bool = False, component: str | None = None):
    chain = "$".join(t for t in ("pulumi:pulumi:Stack", component, type_token) if t)
    request = analyzer_pb2.AnalyzeRequest(
        urn=f"urn:pulumi:prod::hastack::{chain}::{name}",
        type=type_token,
        name=name,
        properties=_struct(props),
        options=analyzer_pb2.AnalyzerResourceOptions(protect=protect),
    )
    return stub.Analyze(request).diagnostics


def test_analyzer_info_lists_every_policy_and_its_config_schema(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == PACK_NAME
    assert info.supportsConfig
    listed = {p.name: p for p in info.policies}
    assert set(listed) == {p.name for p in POLICIES}
    for policy in POLICIES:
        served = listed[policy.name]
        assert served.description == policy.description
        assert served.enforcementLevel == LEVELS[policy.enforcement_level.value]
        expected = policy.config_schema.properties if policy.config_schema else {}
        served_schema = json_format.MessageToDict(served.configSchema.properties)
        # Struct numbers are floats on the wire; compare as JSON values.
        assert served_schema == json.loads(json.dumps(expected, default=float)), policy.name
        for spec in served_schema.values():
            assert "default" in spec and spec.get("description")


def test_analyze_reports_the_violating_resource_only(configured):
    compliant = {"enableHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False}
    assert list(analyze(configured, "azure-native:storage:StorageAccount", "ok", compliant, protect=True)) == []

    violating = {**compliant, "enableHttpsTrafficOnly": False}
    diagnostics = analyze(configured, "azure-native:storage:StorageAccount", "plain-http", violating, protect=True)
    assert [d.policyName for d in diagnostics] == ["storage-https-only"]
    diagnostic = diagnostics[0]
    assert diagnostic.policyPackName == PACK_NAME
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "Fix:" in diagnostic.message


def test_stack_policy_config_sets_enforcement_level_and_threshold(configured):
    server = {
        "highAvailability": {"mode": "ZoneRedundant", "standbyAvailabilityZone": "2"},
        "availabilityZone": "1",
        "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
        "network": {"publicNetworkAccess": "Disabled"},
    }
    diagnostics = {d.policyName: d for d in analyze(configured, "azure-native:dbforpostgresql:Server", "db", server)}
    # Advisory by default, mandatory in config.prod.json; prod wants 14 days, not 7.
    assert diagnostics["db-geo-redundant-backup"].enforcementLevel == analyzer_pb2.MANDATORY
    assert "at least 14" in diagnostics["db-backup-retention"].message
    # `protect` arrives in the resource options.
    assert diagnostics["stateful-resources-protected"].enforcementLevel == analyzer_pb2.MANDATORY
    assert set(diagnostics) == {"db-geo-redundant-backup", "db-backup-retention", "stateful-resources-protected"}


def test_secret_props_arrive_unwrapped_and_stack_config_is_read(configured):
    envs = ["NODE_ID=app-0", {**SECRET_SIG, "value": "JWT_SECRET=generated"}, "API_TOKEN=abc123"]
    props = {"image": "sha256:" + "ab" * 32, "envs": envs, "healthcheck": {"tests": ["CMD", "true"]}}
    diagnostics = analyze(configured, "docker:index/container:Container", "app-0", props, component="hastack:docker:App")
    assert [d.policyName for d in diagnostics] == ["no-plaintext-secret-env"]
    assert "API_TOKEN" in diagnostics[0].message and "JWT_SECRET" not in diagnostics[0].message


def test_unknown_value_during_preview_is_advisory(configured):
    props = {"enableHttpsTrafficOnly": True, "minimumTlsVersion": UNKNOWN_STRING_VALUE, "allowBlobPublicAccess": False}
    diagnostics = analyze(configured, "azure-native:storage:StorageAccount", "preview", props, protect=True)
    assert [d.policyName for d in diagnostics] == ["storage-min-tls"]
    assert diagnostics[0].enforcementLevel == analyzer_pb2.ADVISORY
    assert "during preview" in diagnostics[0].message


def test_analyze_stack_counts_replicas_across_resources(configured):
    def app_replica(name):
        return analyzer_pb2.AnalyzerResource(
            urn=f"urn:pulumi:prod::hastack::pulumi:pulumi:Stack$hastack:docker:App$docker:index/container:Container::{name}",
            type="docker:index/container:Container",
            name=name,
            properties=_struct({"envs": [f"NODE_ID={name}"]}),
        )

    response = configured.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[app_replica("app-0"), app_replica("app-1")]))
    by_policy = {d.policyName: d for d in response.diagnostics}
    assert by_policy["app-min-replicas"].enforcementLevel == analyzer_pb2.MANDATORY
    assert "at least 3" in by_policy["app-min-replicas"].message
