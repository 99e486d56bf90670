"""Secrets: a secret-looking env var must be fed from a secret, never typed in as text.

How a rule can tell, given that the engine hands policies every input with secrets
already unwrapped (a Pulumi secret and a plain string look the same here):
- Azure Container Apps have a real secret reference: an env entry whose NAME looks secret
  must use `secretRef` (pointing at `configuration.secrets`), not `value`.
- Docker has no secret reference; every env var is `KEY=VALUE` text. hastack feeds secret
  env vars only from pulumi-random (`hastack:app.generatedSecrets`) or from its own
  secret connection strings (DATABASE_URL, DATABASE_READ_URL). The one way plaintext gets
  in is `hastack:app.env` in the stack file, so a secret-looking NAME whose value comes
  from that plaintext stack config is the violation. The pack reads the stack config the
  CLI passes it (PULUMI_CONFIG); the offline plan runs in the program's config context.
"""

from __future__ import annotations

import json
import re

import pulumi
from pulumi_policy import EnforcementLevel

from .base import HastackResourcePolicy
from .resources import AZURE_CONTAINER_APP, DOCKER_CONTAINER, DOCKER_SERVICE, app_containers, container_spec, docker_env, known_items

APP_CONFIG_KEY = "hastack:app"


def plaintext_env_names() -> set[str]:
    """Env names the stack file sets in plain text under hastack:app.env."""
    raw = pulumi.runtime.get_config(APP_CONFIG_KEY)
    if not raw:
        return set()
    try:
        env = json.loads(raw).get("env") if isinstance(raw, str) else None
    except (json.JSONDecodeError, AttributeError):
        return set()  # invalid app config never gets this far: the program rejects it first
    return set(env) if isinstance(env, dict) else set()


def _check_secret_env(args, report, settings):
    looks_secret = re.compile(settings["secretNamePattern"])
    if args.resource_type in (DOCKER_CONTAINER, DOCKER_SERVICE):
        # A container's env is a list of KEY=VALUE; a service's is a map.
        env = docker_env(args.props) if args.resource_type == DOCKER_CONTAINER else dict(container_spec(args.props).get("env") or {})
        leaked = sorted(name for name in env if looks_secret.search(name) and name in plaintext_env_names())
        if leaked:
            report(
                f"{', '.join(leaked)} look(s) secret but come(s) from plain text in hastack:app.env, so the value sits "
                "unencrypted in the stack file and state. Fix: list the name in hastack:app.generatedSecrets instead."
            )
        return
    for container in app_containers(args.props):
        leaked = sorted(
            str(entry.get("name"))
            for entry in known_items(container.get("env"))
            if looks_secret.search(str(entry.get("name"))) and entry.get("value") is not None and not entry.get("secretRef")
        )
        if leaked:
            report(
                f"Container '{container.get('name')}' sets {', '.join(leaked)} as a plain value. "
                "Fix: put the value in configuration.secrets and reference it with secretRef."
            )


no_plaintext_secret_env = HastackResourcePolicy(
    "no-plaintext-secret-env",
    "Secret-looking container env vars come from secrets (Container Apps secretRef; on Docker and Swarm, generated secrets, never plaintext stack config).",
    applies_to=[DOCKER_CONTAINER, DOCKER_SERVICE, AZURE_CONTAINER_APP],
    check=_check_secret_env,
    enforcement_level=EnforcementLevel.MANDATORY,
    settings={
        "secretNamePattern": {
            "type": "string",
            "format": "regex",
            "default": r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|(^|_)KEY$|(^|_)DSN$|DATABASE(_READ)?_URL|CONNECTION_STRING",
            "description": "Python regex; an env var whose name matches it is treated as a secret.",
        }
    },
)

POLICIES = [no_plaintext_secret_env]
