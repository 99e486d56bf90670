"""hastack: load the stack config, build the stack for its platform, export the outputs."""

import pulumi

from components.config import ConfigError, load_stack_config
from components.stack import build, raw_stack_config, secret_config_keys

try:
    config = load_stack_config(raw_stack_config(), pulumi.get_stack(), secret_keys=secret_config_keys())
    for warning in config.warnings:
        pulumi.log.warn(warning)
    # A platform may refuse config only the real world can judge (e.g. an Azure restore's
    # source server), before it registers anything.
    outputs = build(config)
except ConfigError as err:
    # RunError prints the message without a Python traceback: one line per problem.
    raise pulumi.RunError(f"invalid stack config:\n{err}") from None

for name, value in outputs.items():
    pulumi.export(name, value)
