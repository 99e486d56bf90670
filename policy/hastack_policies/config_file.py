"""Per-stack policy config files (`policy/config.<stack>.json`): read and validate.

The format is the CLI's `--policy-pack-config` format:

    {"all": "advisory",                                   # optional: every policy's level
     "app-min-replicas": {"enforcementLevel": "mandatory", "minReplicas": 3},
     "lb-waf-enabled": "mandatory"}                       # a bare level is allowed too

The CLI checks a file against the schemas the pack declares; the offline plan does the
same here, against the same schemas, so a bad file fails both ways with one line per
problem naming the policy, the key and what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel, Policy

from . import POLICIES_BY_NAME

ALL_POLICIES_KEY = "all"
LEVELS = [level.value for level in EnforcementLevel]


class PolicyConfigError(Exception):
    """A policy config file is invalid. `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class PolicySetting:
    """What one stack's config says about one policy: its level and its properties."""

    enforcement_level: EnforcementLevel
    properties: dict[str, Any] = field(default_factory=dict)


def _type_problem(value: Any, spec: Mapping[str, Any]) -> str | None:
    kind = spec.get("type")
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be an integer"
    if kind == "boolean" and not isinstance(value, bool):
        return "must be true or false"
    if kind == "string" and not isinstance(value, str):
        return "must be a string"
    if "enum" in spec and value not in spec["enum"]:
        return f"must be one of {', '.join(map(str, spec['enum']))}"
    if "minimum" in spec and value < spec["minimum"]:
        return f"must be >= {spec['minimum']}"
    if "maximum" in spec and value > spec["maximum"]:
        return f"must be <= {spec['maximum']}"
    if spec.get("format") == "regex":
        try:
            re.compile(value)
        except re.error as err:
            return f"must be a valid regular expression ({err})"
    return None


def _level_problem(value: Any) -> str | None:
    return None if value in LEVELS else f"enforcementLevel must be one of {', '.join(LEVELS)}"


def _policy_problems(policy: Policy, entry: Any) -> list[str]:
    if isinstance(entry, str):
        problem = _level_problem(entry)
        return [f"{policy.name}: {problem} (got {entry!r})"] if problem else []
    if not isinstance(entry, dict):
        return [f"{policy.name}: must be an enforcement level ({', '.join(LEVELS)}) or an object (got {entry!r})"]
    schema = policy.config_schema.properties if policy.config_schema else {}
    problems = []
    for key, value in entry.items():
        if key == "enforcementLevel":
            problem = _level_problem(value)
        elif key in schema:
            problem = _type_problem(value, schema[key])
        else:
            allowed = ", ".join(["enforcementLevel", *schema])
            problems.append(f"{policy.name}.{key}: unknown setting; allowed: {allowed}")
            continue
        if problem:
            problems.append(f"{policy.name}.{key}: {problem} (got {value!r})")
    return problems


def validate_policy_config(document: Any) -> list[str]:
    """Every problem in a parsed policy config document, one line each (empty: valid)."""
    if not isinstance(document, dict):
        return ["the policy config must be a JSON object keyed by policy name"]
    problems = []
    for name, entry in document.items():
        if name == ALL_POLICIES_KEY:
            problem = _level_problem(entry)
            if problem:
                problems.append(f"{ALL_POLICIES_KEY}: {problem} (got {entry!r})")
        elif name in POLICIES_BY_NAME:
            problems.extend(_policy_problems(POLICIES_BY_NAME[name], entry))
        else:
            problems.append(f"{name}: unknown policy; known: {', '.join(POLICIES_BY_NAME)}")
    return problems


def resolve(document: Mapping[str, Any]) -> dict[str, PolicySetting]:
    """Each policy's effective level and configured properties for a *valid* document,
    with the CLI's precedence: the policy's own entry, then `all`, then the pack default."""
    blanket = document.get(ALL_POLICIES_KEY)
    settings = {}
    for name, policy in POLICIES_BY_NAME.items():
        entry = document.get(name, {})
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        level = entry.pop("enforcementLevel", None) or blanket or policy.enforcement_level.value
        settings[name] = PolicySetting(EnforcementLevel(level), entry)
    return settings


def load_policy_config(path: Path | None) -> dict[str, PolicySetting]:
    """Read and validate a policy config file; None means the pack's defaults."""
    if path is None:
        return resolve({})
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise PolicyConfigError([f"{path}: policy config file not found"]) from None
    except json.JSONDecodeError as err:
        raise PolicyConfigError([f"{path}: not valid JSON: {err}"]) from None
    problems = validate_policy_config(document)
    if problems:
        raise PolicyConfigError([f"{path}: {problem}" for problem in problems])
    return resolve(document)
