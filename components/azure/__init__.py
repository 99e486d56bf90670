"""The Azure platform: managed PostgreSQL, Container Apps, Application Gateway, Azure Files.

`platform.build_azure_stack` wires the components together; each other module holds
one ComponentResource. Submodules of pulumi-azure-native are imported one by one
(`import pulumi_azure_native.app as app`): the package as a whole is very large.
"""

import math


def whole_seconds(milliseconds: int) -> int:
    """Azure probes count in whole seconds, at least 1; config counts in milliseconds."""
    return max(1, math.ceil(milliseconds / 1000))
