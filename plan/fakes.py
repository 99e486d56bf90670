"""What the fake providers answer: ids, computed outputs and invoke results.

Mocks must return plausible computed values (a container's name, a server's FQDN)
because the program feeds them into other resources. Generated secrets return a
recognisable value so the leak scan can look for it.
"""

from __future__ import annotations

import pulumi

# Every pulumi-random secret resolves to this prefix plus its resource name, so a
# leak scan can find any generated secret that escapes into plaintext.
FAKE_SECRET_PREFIX = "fake-secret-"


class ProviderFakes(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        computed = COMPUTED.get(args.typ)
        if computed:
            state.update(computed(args))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        answer = INVOKES.get(args.token)
        return answer(args) if answer else {}


def _random_secret(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"result": f"{FAKE_SECRET_PREFIX}{args.name}"}


def _docker_container(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"name": args.inputs.get("name") or args.name}


# Resource type token -> computed outputs. Components add theirs here as they need them.
COMPUTED = {
    "random:index/randomPassword:RandomPassword": _random_secret,
    "docker:index/container:Container": _docker_container,
}

# Invoke token -> result.
INVOKES: dict = {}
