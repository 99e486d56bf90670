"""Pick the platform's builder. Each platform module is imported only when used,
so a Docker stack never loads the (large) Azure SDK."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.config import get_config_secret_keys_env, is_config_secret

from components.config import StackConfig


def raw_stack_config() -> dict[str, str]:
    """All config the engine gave this program, namespaced keys to raw strings."""
    raw = dict(pulumi.runtime.get_config_env() or {})
    raw.update(pulumi.runtime.config.CONFIG.get())
    return raw


def secret_config_keys() -> set[str]:
    """The config keys the engine says hold secrets (a top-level key is listed when any
    value inside it was set with `--secret`), as the SDK's own Config.get_secret reads them."""
    return {key for key in raw_stack_config() if is_config_secret(key)} | set(get_config_secret_keys_env())


def build(config: StackConfig) -> dict[str, Any]:
    """Declare every resource for `config` and return the stack outputs."""
    if config.platform == "docker":
        from components.docker.platform import build_docker_stack

        return build_docker_stack(config)
    if config.platform == "swarm":
        from components.swarm.platform import build_swarm_stack

        return build_swarm_stack(config)
    from components.azure.platform import build_azure_stack

    return build_azure_stack(config)
