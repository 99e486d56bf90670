"""Entry point the Pulumi CLI runs (`python -m pulumi.policy <engine> .` in this directory)."""

from hastack_policies import PACK_NAME, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(name=PACK_NAME, policies=POLICIES)
