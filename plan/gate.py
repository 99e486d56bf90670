"""Apply the policy pack to a recorded program run, the way the engine applies it.

No rule is re-implemented here: each policy's own `validate` (the callable the pack's
gRPC server calls) gets an args object built like pulumi_policy builds it from an
Analyze / AnalyzeStack request: props deserialized from the wire form (secrets unwrapped)
behind the unknown-checking proxy, resource options including `protect`, and the
policy's config from the stack's policy config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties

# What `args.not_applicable()` raises. pulumi_policy keeps the class private; its server
# catches it exactly like this and reports the policy as not applicable to the resource.
from pulumi_policy.policy import _NotApplicableError as NotApplicable
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policy.hastack_policies import POLICIES
from policy.hastack_policies.config_file import PolicySetting

from .engine import ProgramRun, RecordedResource

# The pack's gRPC server reports a stack-wide violation with an empty URN; so do we.
STACK_WIDE = ""


class Outcome(Enum):
    PASSED = "passed"
    VIOLATED = "violated"
    # A value the rule needs is unknown until `pulumi up` (the pack reports this as advisory).
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    policy: str
    level: EnforcementLevel
    outcome: Outcome
    urn: str
    message: str = ""

    @property
    def blocks(self) -> bool:
        """A mandatory violation fails the gate, as it fails `pulumi preview`/`up`.

        Remediate is reported as mandatory too, as pulumi_policy does when a violation remains."""
        return self.outcome is Outcome.VIOLATED and self.level in (EnforcementLevel.MANDATORY, EnforcementLevel.REMEDIATE)


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=resource.ignore_changes,
        delete_before_replace=resource.delete_before_replace,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )


def _props(resource: RecordedResource):
    return unknown_checking_proxy(deserialize_properties(resource.wire_inputs))


def _check_resource(policy, resource: RecordedResource, setting: PolicySetting) -> list[Verdict]:
    args = ResourceValidationArgs(
        resource.type, _props(resource), resource.urn, resource.name, _options(resource), None, setting.properties
    )
    messages: list[str] = []
    try:
        policy.validate(args, lambda message, urn=None: messages.append(message))
    except UnknownValueError as unknown:
        return [Verdict(policy.name, EnforcementLevel.ADVISORY, Outcome.UNKNOWN, resource.urn, unknown.message)]
    except NotApplicable:
        return []
    if not messages:
        return [Verdict(policy.name, setting.enforcement_level, Outcome.PASSED, resource.urn)]
    return [Verdict(policy.name, setting.enforcement_level, Outcome.VIOLATED, resource.urn, m) for m in messages]


def _check_stack(policy, run: ProgramRun, setting: PolicySetting) -> list[Verdict]:
    resources = [
        PolicyResource(r.type, _props(r), r.urn, r.name, _options(r), None, None, [], {}) for r in run.resources
    ]
    by_urn = {r.urn: r for r in resources}
    for recorded, resource in zip(run.resources, resources):
        resource.parent = by_urn.get(recorded.parent)
        resource.dependencies = [by_urn[d] for d in recorded.dependencies if d in by_urn]
    reported: list[tuple[str, str | None]] = []
    try:
        policy.validate(StackValidationArgs(resources, setting.properties), lambda m, urn=None: reported.append((m, urn)))
    except UnknownValueError as unknown:
        return [Verdict(policy.name, EnforcementLevel.ADVISORY, Outcome.UNKNOWN, STACK_WIDE, unknown.message)]
    except NotApplicable:
        return []
    if not reported:
        return [Verdict(policy.name, setting.enforcement_level, Outcome.PASSED, STACK_WIDE)]
    return [Verdict(policy.name, setting.enforcement_level, Outcome.VIOLATED, urn or STACK_WIDE, m) for m, urn in reported]


def evaluate(run: ProgramRun, settings: dict[str, PolicySetting]) -> list[Verdict]:
    """Every enabled policy's verdicts: one per in-scope resource, or one per stack rule."""
    verdicts: list[Verdict] = []
    for policy in POLICIES:
        setting = settings[policy.name]
        if setting.enforcement_level is EnforcementLevel.DISABLED:
            continue
        if isinstance(policy, ResourceValidationPolicy):
            for resource in run.resources:
                if resource.type in policy.applies_to:
                    verdicts.extend(_check_resource(policy, resource, setting))
        else:
            verdicts.extend(_check_stack(policy, run, setting))
    return verdicts
