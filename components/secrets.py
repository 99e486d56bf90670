"""Generated secrets, shared by every platform.

Every password the stack needs is generated once by pulumi-random and kept in the
stack state (encrypted). Nothing is typed in by a person, nothing is in a stack
file, and every value leaves this component as a Pulumi secret, so it is masked in
previews, logs and stack outputs wherever it flows.

Usage:

    secrets = StackSecrets("secrets", StackSecretsArgs(app_secret_names=["JWT_SECRET"]))
    secrets.db_superuser_password     # Output[str], secret
    secrets.db_replication_password   # Output[str], secret (self-hosted DB only, else None)
    secrets.db_app_password           # Output[str], secret
    secrets.db_monitor_password       # Output[str], secret (self-hosted monitoring only, else None)
    secrets.app_secrets["JWT_SECRET"] # Output[str], secret
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random

# Letters and digits only: the DB passwords go into libpq URLs and shell
# environments, where punctuation needs escaping. 32 alphanumerics is ~190 bits.
PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class StackSecretsArgs:
    # Env names (e.g. JWT_SECRET) of app secrets; each gets its own generated value.
    app_secret_names: Sequence[str] = ()
    # A self-hosted PostgreSQL has a replication role besides the superuser and the
    # app's role; a managed server replicates by itself, so it gets no replication password.
    self_hosted_database: bool = True
    # postgres_exporter's pg_monitor role, when the stack runs its own monitoring.
    database_monitoring: bool = False


class StackSecrets(pulumi.ComponentResource):
    """DB superuser and app passwords (plus replication, self-hosted), and one value per app secret name."""

    db_superuser_password: pulumi.Output[str]
    db_replication_password: pulumi.Output[str] | None
    db_app_password: pulumi.Output[str]
    db_monitor_password: pulumi.Output[str] | None
    app_secrets: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: StackSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:index:Secrets", name, None, opts)
        self._name = name
        self.db_superuser_password = self._generate("db-superuser")
        self.db_replication_password = self._generate("db-replication") if args.self_hosted_database else None
        self.db_app_password = self._generate("db-app")
        self.db_monitor_password = (
            self._generate("db-monitor") if args.self_hosted_database and args.database_monitoring else None
        )
        self.app_secrets = {
            secret_name: self._generate(f"app-{secret_name.lower().replace('_', '-')}")
            for secret_name in args.app_secret_names
        }
        self.register_outputs(
            {
                "dbSuperuserPassword": self.db_superuser_password,
                "dbReplicationPassword": self.db_replication_password,
                "dbAppPassword": self.db_app_password,
                "dbMonitorPassword": self.db_monitor_password,
                "appSecrets": self.app_secrets,
            }
        )

    def _generate(self, purpose: str) -> pulumi.Output[str]:
        password = random.RandomPassword(
            f"{self._name}-{purpose}",
            length=PASSWORD_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # `result` is already secret in the provider schema; saying it again keeps
        # the guarantee local and visible to anyone reading this file.
        return pulumi.Output.secret(password.result)
