"""Per-stack policy config files: the shipped ones are valid, bad ones get one clear line each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi_policy import EnforcementLevel

from policy.hastack_policies import POLICIES
from policy.hastack_policies.config_file import PolicyConfigError, load_policy_config, resolve, validate_policy_config

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
SHIPPED = sorted(POLICY_DIR.glob("config.*.json"))


def test_a_config_per_shipped_stack():
    stacks = {p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in POLICY_DIR.parent.glob("Pulumi.*.yaml")}
    assert {p.name.removeprefix("config.").removesuffix(".json") for p in SHIPPED} == stacks


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_are_valid_and_name_every_policy(path):
    load_policy_config(path)
    assert set(json.loads(path.read_text())) == {p.name for p in POLICIES}, "each stack states every policy's level"


def test_every_setting_has_a_default_and_description():
    for policy in POLICIES:
        for key, spec in (policy.config_schema.properties if policy.config_schema else {}).items():
            assert "default" in spec and spec.get("description"), f"{policy.name}.{key}"
            assert not validate_policy_config({policy.name: {key: spec["default"]}}), f"{policy.name}.{key} default"


def test_defaults_are_mandatory_for_safety_and_advisory_for_cost():
    defaults = {name: setting.enforcement_level for name, setting in resolve({}).items()}
    cost_sensitive = {"app-min-replicas", "lb-waf-enabled", "db-zone-redundant-ha", "db-streaming-replica", "db-geo-redundant-backup"}
    for name, level in defaults.items():
        expected = EnforcementLevel.ADVISORY if name in cost_sensitive else EnforcementLevel.MANDATORY
        assert level is expected, name


def test_precedence_policy_entry_then_all_then_default():
    settings = resolve({"all": "disabled", "app-min-replicas": {"enforcementLevel": "mandatory", "minReplicas": 4}})
    assert settings["app-min-replicas"].enforcement_level is EnforcementLevel.MANDATORY
    assert settings["app-min-replicas"].properties == {"minReplicas": 4}
    assert settings["image-pinned"].enforcement_level is EnforcementLevel.DISABLED


BAD_CONFIGS = [
    ({"app-min-replicas": {"minReplicas": 0}}, "app-min-replicas.minReplicas: must be >= 1 (got 0)"),
    ({"app-min-replicas": {"minReplicas": "three"}}, "app-min-replicas.minReplicas: must be an integer (got 'three')"),
    ({"app-min-replicas": {"minReplicas": True}}, "app-min-replicas.minReplicas: must be an integer (got True)"),
    ({"app-min-replicas": {"minReplica": 3}}, "app-min-replicas.minReplica: unknown setting; allowed: enforcementLevel, minReplicas"),
    ({"app-min-replicas": {"enforcementLevel": "strict"}}, "app-min-replicas.enforcementLevel: enforcementLevel must be one of advisory, mandatory, remediate, disabled (got 'strict')"),
    ({"image-pinned": "block"}, "image-pinned: enforcementLevel must be one of advisory, mandatory, remediate, disabled (got 'block')"),
    ({"image-pinned": 3}, "image-pinned: must be an enforcement level (advisory, mandatory, remediate, disabled) or an object (got 3)"),
    ({"db-backup-retention": {"minDays": 40}}, "db-backup-retention.minDays: must be <= 35 (got 40)"),
    ({"db-zone-redundant-ha": {"mode": "Disabled"}}, "db-zone-redundant-ha.mode: must be one of ZoneRedundant, SameZone (got 'Disabled')"),
    ({"lb-waf-enabled": {"requirePreventionMode": "yes"}}, "lb-waf-enabled.requirePreventionMode: must be true or false (got 'yes')"),
    ({"no-plaintext-secret-env": {"secretNamePattern": "(PASSWORD"}}, "no-plaintext-secret-env.secretNamePattern: must be a valid regular expression"),
    ({"all": "loud"}, "all: enforcementLevel must be one of advisory, mandatory, remediate, disabled (got 'loud')"),
    ({"no-such-policy": "advisory"}, "no-such-policy: unknown policy; known: app-min-replicas,"),
    (["app-min-replicas"], "the policy config must be a JSON object keyed by policy name"),
]


@pytest.mark.parametrize(("document", "expected"), BAD_CONFIGS, ids=[e.split(":")[0] + str(i) for i, (_, e) in enumerate(BAD_CONFIGS)])
def test_bad_config_gets_one_clear_line(document, expected):
    problems = validate_policy_config(document)
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems[0]


def test_bad_file_names_the_file(tmp_path):
    path = tmp_path / "config.prod.json"
    path.write_text('{"app-min-replicas": {"minReplicas": 0}, "lb-waf-enabled": "loud"}')
    with pytest.raises(PolicyConfigError) as raised:
        load_policy_config(path)
    assert len(raised.value.problems) == 2
    assert all(line.startswith(f"{path}: ") for line in raised.value.problems)
    path.write_text("{not json")
    with pytest.raises(PolicyConfigError, match="not valid JSON"):
        load_policy_config(path)


def test_docs_table_matches_the_shipped_levels():
    """docs/policy.md lists every policy with its default and per-stack levels."""
    docs = (POLICY_DIR.parent / "docs" / "policy.md").read_text()
    short = {"advisory": "A", "mandatory": "M", "disabled": "off", "remediate": "R"}
    stacks = ["dev", "staging", "prod"]
    configs = {stack: load_policy_config(POLICY_DIR / f"config.{stack}.json") for stack in stacks}
    for policy in POLICIES:
        row = next((line for line in docs.splitlines() if line.startswith(f"| `{policy.name}` |")), None)
        assert row, f"docs/policy.md has no row for {policy.name}"
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        expected = [short[policy.enforcement_level.value]] + [short[configs[s][policy.name].enforcement_level.value] for s in stacks]
        assert cells[2:6] == expected, policy.name
