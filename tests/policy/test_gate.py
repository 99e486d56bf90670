"""The offline plan as a gate: every shipped stack passes; a copy of a shipped stack with
one thing broken fails with exit 1 and names the policy; an invalid stack exits 2."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from plan.__main__ import EXIT_CANNOT_PLAN, EXIT_PASS, EXIT_VIOLATIONS, main, shipped_stacks
from plan.engine import run_stack_file
from plan.fakes import FAKE_SECRET_PREFIX
from plan.gate import Outcome, evaluate
from policy.hastack_policies.config_file import load_policy_config

REPO = Path(__file__).resolve().parents[2]
FAIL_LINE = re.compile(r"^    FAIL ")
POLICY_HEADER = re.compile(r"^  ([a-z0-9-]+) \((advisory|mandatory|remediate)\)$")


def failing_policies(output: str) -> set[str]:
    """Names of the policies with a FAIL verdict in the plan's output."""
    failing, current = set(), None
    for line in output.splitlines():
        header = POLICY_HEADER.match(line)
        current = header.group(1) if header else current
        if FAIL_LINE.match(line):
            failing.add(current)
    return failing


def plan(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("stack", shipped_stacks())
def test_shipped_stack_passes_the_gate(capsys, stack):
    code, out, err = plan(capsys, "--stack", stack)
    assert code == EXIT_PASS, out + err
    assert out.rstrip().splitlines()[-1].startswith("PASS: 0 mandatory violation(s)")
    assert FAKE_SECRET_PREFIX not in out, "the plan never prints a secret value"
    assert "Resources (" in out and "Policies:" in out


def test_plan_runs_as_a_module_process():
    """What `make plan STACK=dev` runs."""
    result = subprocess.run([sys.executable, "-m", "plan", "--stack", "dev"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == EXIT_PASS, result.stdout + result.stderr
    assert "app-0 (docker:index/container:Container)" in result.stdout


def patroni_dev_stack_file(tmp_path: Path) -> Path:
    """A copy of Pulumi.dev.yaml with `database.failover: patroni`."""
    doc = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(yaml.safe_dump(_break(doc, "database.failover", "patroni")))
    return stack_file


def test_patroni_dev_stack_passes_the_gate_as_a_module_process(tmp_path):
    stack_file = patroni_dev_stack_file(tmp_path)
    result = subprocess.run([sys.executable, "-m", "plan", "--stack-file", str(stack_file), "--stack", "dev"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == EXIT_PASS, result.stdout + result.stderr
    for name in ("etcd-0", "etcd-1", "etcd-2", "db-0", "db-1"):
        assert f"{name} (docker:index/container:Container)" in result.stdout
    assert FAKE_SECRET_PREFIX not in result.stdout


def test_patroni_dev_stack_meets_the_prod_level_database_rules(capsys, tmp_path):
    """With db-streaming-replica and stateful-resources-protected mandatory (as in prod),
    a protected Patroni stack passes: its members count as PostgreSQL nodes."""
    doc = yaml.safe_load(patroni_dev_stack_file(tmp_path).read_text())
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(yaml.safe_dump(_break(doc, "protect", True)))
    policy_config = json.loads((REPO / "policy" / "config.dev.json").read_text())
    for policy in ("db-streaming-replica", "stateful-resources-protected"):
        entry = policy_config.get(policy)
        policy_config[policy] = {**(entry if isinstance(entry, dict) else {}), "enforcementLevel": "mandatory"}
    config_file = tmp_path / "policy-config.json"
    config_file.write_text(json.dumps(policy_config))
    code, out, err = plan(capsys, "--stack-file", str(stack_file), "--policy-config", str(config_file))
    assert code == EXIT_PASS, out + err
    assert failing_policies(out) == set()


def test_the_database_rules_judge_the_patroni_members_and_not_etcd(tmp_path):
    run = run_stack_file(patroni_dev_stack_file(tmp_path))
    settings = load_policy_config(REPO / "policy" / "config.prod.json")
    verdicts = evaluate(run, settings)
    names = {r.urn: r.name for r in run.resources}
    assert [v.outcome for v in verdicts if v.policy == "db-streaming-replica"] == [Outcome.PASSED]
    assert sorted(names[v.urn] for v in verdicts if v.policy == "db-no-public-access") == ["db-0", "db-1"]

    _tamper(run.by_name("db-1"), "ports", [{"internal": 5432, "external": 5432}])
    assert {v.policy for v in evaluate(run, settings) if v.blocks} >= {"db-no-public-access"}


def _break(doc: dict, path: str, value) -> dict:
    """A copy of a stack document with the `hastack:` config at dotted `path` set to `value`."""
    broken = copy.deepcopy(doc)
    top, *rest = path.split(".")
    key = f"hastack:{top}"
    if not rest:
        broken["config"][key] = value
        return broken
    target = broken["config"].setdefault(key, {})
    for part in rest[:-1]:
        target = target.setdefault(part, {})
    target[rest[-1]] = value
    return broken


# (stack, policy, config path, bad value): each breaks exactly one policy.
BREAKS = [
    ("dev", "app-min-replicas", "app.replicas", 1),
    ("dev", "lb-active-health-checks", "loadBalancer.healthCheck.intervalMs", 5000),
    ("dev", "db-streaming-replica", "database.replicas", 0),
    ("dev", "no-plaintext-secret-env", "app.env", {"LOG_LEVEL": "info", "API_TOKEN": "abc123"}),
    ("dev", "tls-in-transit", "loadBalancer.tls.enabled", False),
    ("dev", "db-backups", "backups.enabled", False),
    ("staging", "app-min-replicas", "app.replicas", 1),
    ("prod", "lb-active-health-checks", "loadBalancer.healthCheck.intervalMs", 30000),
    ("prod", "lb-waf-enabled", "loadBalancer.sku", "Standard_v2"),
    ("prod", "db-zone-redundant-ha", "database.managed.highAvailability", "Disabled"),
    ("prod", "db-streaming-replica", "database.replicas", 0),
    ("prod", "db-backup-retention", "database.managed.backupRetentionDays", 7),
    ("prod", "db-geo-redundant-backup", "database.managed.geoRedundantBackup", False),
    ("prod", "no-plaintext-secret-env", "app.env", {"LOG_LEVEL": "info", "DB_PASSWORD": "hunter2"}),
    ("prod", "stateful-resources-protected", "protect", False),
    ("onprem", "swarm-spread", "swarm.maxReplicasPerNode", 3),
    ("onprem", "lb-active-health-checks", "loadBalancer.healthCheck.intervalMs", 5000),
    ("onprem", "no-plaintext-secret-env", "app.env", {"LOG_LEVEL": "info", "DB_PASSWORD": "hunter2"}),
    ("onprem", "stateful-resources-protected", "protect", False),
    ("onprem", "db-backups", "backups.enabled", False),
    ("onprem", "tls-in-transit", "loadBalancer.tls.enabled", False),
]


@pytest.mark.parametrize(("stack", "policy", "path", "value"), BREAKS, ids=[f"{s}-{p}" for s, p, _, _ in BREAKS])
def test_broken_stack_copy_fails_the_gate_naming_the_policy(capsys, tmp_path, stack, policy, path, value):
    doc = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    stack_file = tmp_path / f"Pulumi.{stack}.yaml"
    stack_file.write_text(yaml.safe_dump(_break(doc, path, value)))
    # The stack's own policy config, with the policy under test mandatory (dev keeps
    # cost-sensitive HA rules advisory, and an advisory violation does not block).
    policy_config = json.loads((REPO / "policy" / f"config.{stack}.json").read_text())
    entry = policy_config[policy]
    policy_config[policy] = {**(entry if isinstance(entry, dict) else {}), "enforcementLevel": "mandatory"}
    config_file = tmp_path / "policy-config.json"
    config_file.write_text(json.dumps(policy_config))

    code, out, err = plan(capsys, "--stack-file", str(stack_file), "--policy-config", str(config_file))
    assert code == EXIT_VIOLATIONS, out + err
    assert failing_policies(out) == {policy}, out
    assert "hunter2" not in out and "abc123" not in out, "env values are never printed"


def test_config_rejects_what_image_pinned_would_catch(capsys, tmp_path):
    """An unpinned app image never reaches the policy: the stack config refuses it (exit 2).
    The policy still guards images the code pulls: see test_tampered_program_output_*."""
    doc = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text(yaml.safe_dump(_break(doc, "app.image", "ghcr.io/acme/shop:latest")))
    code, out, err = plan(capsys, "--stack-file", str(stack_file))
    assert code == EXIT_CANNOT_PLAN
    assert "hastack:app.image" in err and "latest" in err


def test_prod_without_its_certificate_cannot_plan(capsys, tmp_path):
    """Only prod needs a real certificate; without one the config names the key (exit 2)."""
    doc = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    del doc["config"]["hastack:loadBalancer"]["certificateSecretId"]
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text(yaml.safe_dump(doc))
    code, out, err = plan(capsys, "--stack-file", str(stack_file))
    assert code == EXIT_CANNOT_PLAN
    assert "loadBalancer.certificateSecretId is required on the Azure prod stack" in err


def _tamper(resource, path: str, value) -> None:
    target = resource.wire_inputs
    *parents, leaf = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(leaf)] = value
    else:
        target[leaf] = value


# Rules no stack setting can break (the components hard-code the safe value), checked by
# breaking one input of the real program's recorded output: (stack, policy, resource, path, value).
TAMPERS = [
    ("dev", "image-pinned", "lb-image", "name", "haproxy"),
    ("dev", "app-health-checks", "app-1", "healthcheck", {"tests": ["NONE"]}),
    ("dev", "db-no-public-access", "db-primary", "ports", [{"internal": 5432, "external": 5432}]),
    ("dev", "tls-in-transit", "db-replica-0", "uploads.0.content", "host all all 172.28.0.0/16 scram-sha-256\n"),
    ("prod", "app-health-checks", "hastack-prod-app", "template.containers.0.probes", []),
    ("prod", "db-no-public-access", "hastack-prod-primary", "network.publicNetworkAccess", "Enabled"),
    ("prod", "db-secure-transport", "hastack-prod-param-require-secure-transport", "value", "off"),
    ("prod", "storage-https-only", "hastack-prod-files", "enableHttpsTrafficOnly", False),
    ("prod", "storage-min-tls", "hastack-prod-files", "minimumTlsVersion", "TLS1_0"),
    ("prod", "storage-no-public-blob-access", "hastack-prod-files", "allowBlobPublicAccess", True),
    ("prod", "lb-https-only", "hastack-prod-gateway", "sslPolicy.policyName", "AppGwSslPolicy20220101"),
    ("staging", "lb-https-only", "hastack-staging-gateway", "requestRoutingRules.1.redirectConfiguration", None),
    ("staging", "key-vault-safe-settings", "hastack-staging-tls-vault", "properties.enablePurgeProtection", False),
    ("onprem", "image-pinned", "app-service", "taskSpec.containerSpec.image", "registry.internal:5000/hastack-app"),
    ("onprem", "app-health-checks", "app-service", "taskSpec.containerSpec.healthcheck", {"tests": ["NONE"]}),
    ("onprem", "db-no-public-access", "db-0", "endpointSpec.ports", [{"targetPort": 5432, "publishedPort": 5432}]),
    ("onprem", "swarm-spread", "db-1", "taskSpec.placement.constraints", ["node.hostname == swarm-1"]),
    ("onprem", "swarm-spread", "app-service", "taskSpec.placement.maxReplicas", 3),
    # The repository volume without its NFS options: each node's own disk.
    ("onprem", "db-backups", "db-0", "taskSpec.containerSpec.mounts.1.volumeOptions", {"driverName": "local"}),
]

_RUNS: dict[str, object] = {}


def _shipped_run(stack: str):
    if stack not in _RUNS:
        _RUNS[stack] = run_stack_file(REPO / f"Pulumi.{stack}.yaml")
    return copy.deepcopy(_RUNS[stack])


@pytest.mark.parametrize(("stack", "policy", "name", "path", "value"), TAMPERS, ids=[f"{s}-{p}" for s, p, *_ in TAMPERS])
def test_tampered_program_output_fails_the_named_policy(stack, policy, name, path, value):
    run = _shipped_run(stack)
    _tamper(run.by_name(name), path, value)
    verdicts = evaluate(run, load_policy_config(REPO / "policy" / f"config.{stack}.json"))
    assert {v.policy for v in verdicts if v.blocks} == {policy}


def test_value_unknown_during_preview_is_reported_not_failed():
    run = _shipped_run("prod")
    _tamper(run.by_name("hastack-prod-files"), "minimumTlsVersion", UNKNOWN_STRING_VALUE)
    verdicts = evaluate(run, load_policy_config(REPO / "policy" / "config.prod.json"))
    tls = [v for v in verdicts if v.policy == "storage-min-tls"]
    assert [v.outcome for v in tls] == [Outcome.UNKNOWN]
    assert not any(v.blocks for v in verdicts)


def test_every_policy_is_broken_by_some_gate_test():
    from policy.hastack_policies import POLICIES

    broken = {p for _, p, *_ in BREAKS} | {p for _, p, *_ in TAMPERS}
    assert broken == {p.name for p in POLICIES}


def test_invalid_stack_file_exits_2_with_the_config_error(capsys, tmp_path):
    doc = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(yaml.safe_dump(_break(doc, "app.replicas", 0)))
    code, out, err = plan(capsys, "--stack-file", str(stack_file))
    assert code == EXIT_CANNOT_PLAN
    assert "hastack:app.replicas: " in err and "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--stack", "qa"], "no stack file"),
        (["--stack", "dev", "--policy-config", "missing.json"], "policy config file not found"),
    ],
)
def test_bad_arguments_exit_2(capsys, argv, expected):
    code, _, err = plan(capsys, *argv)
    assert code == EXIT_CANNOT_PLAN and expected in err


def test_missing_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == EXIT_CANNOT_PLAN


def test_bad_policy_config_exits_2_with_one_line_per_problem(capsys, tmp_path):
    config_file = tmp_path / "config.json"
    config_file.write_text('{"app-min-replicas": {"minReplicas": -1}}')
    code, _, err = plan(capsys, "--stack", "dev", "--policy-config", str(config_file))
    assert code == EXIT_CANNOT_PLAN
    assert "app-min-replicas.minReplicas: must be >= 1 (got -1)" in err
