"""The two policy shapes every hastack rule uses, and how a rule reads its settings.

A rule is a plain function `check(args, report, settings)`. It is wrapped in a
pulumi_policy policy object that
- declares its configurable settings as a JSON schema with a `default` per key, so
  `pulumi preview --policy-pack-config` and the offline plan read the same knobs;
- only calls the rule for the resource types it `applies_to` (resource policies), so the
  plan can list one verdict per policy and in-scope resource.

The plan (`plan/gate.py`) calls the very same `validate` callables the gRPC server calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

ResourceCheck = Callable[[ResourceValidationArgs, ReportViolation, Mapping[str, Any]], None]
StackCheck = Callable[[StackValidationArgs, ReportViolation, Mapping[str, Any]], None]


def _schema(settings: Mapping[str, dict[str, Any]]) -> PolicyConfigSchema | None:
    return PolicyConfigSchema(properties=dict(settings)) if settings else None


def effective_settings(schema: PolicyConfigSchema | None, configured: Mapping[str, Any]) -> dict[str, Any]:
    """Schema defaults overlaid with what the stack's policy config sets.

    The CLI may or may not fill in schema defaults before `Configure`, so rules never
    rely on it: a key missing from the config always means its documented default.
    """
    defaults = {key: spec["default"] for key, spec in (schema.properties if schema else {}).items()}
    return {**defaults, **{k: v for k, v in configured.items() if k != "enforcementLevel"}}


class HastackResourcePolicy(ResourceValidationPolicy):
    """A resource rule scoped to a set of type tokens, with defaulted settings."""

    def __init__(
        self,
        name: str,
        description: str,
        *,
        applies_to: Iterable[str],
        check: ResourceCheck,
        enforcement_level: EnforcementLevel,
        settings: Mapping[str, dict[str, Any]] | None = None,
        remediation_steps: str | None = None,
    ) -> None:
        self.applies_to = frozenset(applies_to)
        self._check = check
        super().__init__(
            name,
            description,
            validate=self._validate_in_scope,
            enforcement_level=enforcement_level,
            config_schema=_schema(settings or {}),
            remediation_steps=remediation_steps,
        )

    def _validate_in_scope(self, args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in self.applies_to:
            self._check(args, report, effective_settings(self.config_schema, args.get_config()))


class HastackStackPolicy(StackValidationPolicy):
    """A rule over the whole stack (counts across resources), with defaulted settings."""

    def __init__(
        self,
        name: str,
        description: str,
        *,
        check: StackCheck,
        enforcement_level: EnforcementLevel,
        settings: Mapping[str, dict[str, Any]] | None = None,
        remediation_steps: str | None = None,
    ) -> None:
        self._check = check
        super().__init__(
            name,
            description,
            validate=self._validate_with_settings,
            enforcement_level=enforcement_level,
            config_schema=_schema(settings or {}),
            remediation_steps=remediation_steps,
        )

    def _validate_with_settings(self, args: StackValidationArgs, report: ReportViolation) -> None:
        self._check(args, report, effective_settings(self.config_schema, args.get_config()))
