"""Entry point the Pulumi CLI runs (`python -m pulumi.policy <engine> .` in this directory)."""

from pulumi_policy import PolicyPack

from hastack_policies import PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=POLICIES)
