"""Call the pack's policies the way pulumi_policy's server does, on hand-built resources.

Props are camelCase, as the engine delivers them, and go through pulumi_policy's
unknown-checking proxy, so a fixture can put `UNKNOWN` where preview would not know a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policy.hastack_policies import POLICIES_BY_NAME

# What a value the engine cannot know during preview looks like on the wire.
UNKNOWN = UNKNOWN_STRING_VALUE
NOT_APPLICABLE = "not applicable"


@dataclass
class Res:
    """One resource in a fixture: its type, camelCase props, owning component and options."""

    type: str
    props: dict[str, Any]
    name: str = "res"
    component: str | None = None
    protect: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        chain = "$".join(t for t in ("pulumi:pulumi:Stack", self.component, self.type) if t)
        return f"urn:pulumi:test::hastack::{chain}::{self.name}"

    def options(self) -> PolicyResourceOptions:
        return PolicyResourceOptions(self.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def check_resource(policy_name: str, resource: Res, config: dict[str, Any] | None = None) -> list[str] | str:
    """The violation messages a resource policy reports, or NOT_APPLICABLE."""
    policy = POLICIES_BY_NAME[policy_name]
    if resource.type not in policy.applies_to:
        return NOT_APPLICABLE
    args = ResourceValidationArgs(
        resource.type, unknown_checking_proxy(resource.props), resource.urn, resource.name, resource.options(), None, config
    )
    messages: list[str] = []
    try:
        policy.validate(args, lambda message, urn=None: messages.append(message))
    except _NotApplicableError:
        return NOT_APPLICABLE
    return messages


def check_stack(policy_name: str, resources: list[Res], config: dict[str, Any] | None = None) -> list[str] | str:
    """The violation messages a stack policy reports, or NOT_APPLICABLE."""
    policy = POLICIES_BY_NAME[policy_name]
    stack = [
        PolicyResource(r.type, unknown_checking_proxy(r.props), r.urn, r.name, r.options(), None, None, [], {})
        for r in resources
    ]
    messages: list[str] = []
    try:
        policy.validate(StackValidationArgs(stack, config), lambda message, urn=None: messages.append(message))
    except _NotApplicableError:
        return NOT_APPLICABLE
    return messages
