"""The offline plan and policy gate: `make plan STACK=prod`.

    python -m plan --stack dev|staging|prod
    python -m plan --stack-file PATH [--stack NAME] [--policy-config PATH]

Runs the program under mocks for a stack file, prints the resource tree with key
settings, then every policy's verdict with the stack's policy config
(`policy/config.<stack>.json` unless `--policy-config` is given).

Exit status: 0 no mandatory violation, 1 at least one, 2 the plan could not run
(invalid stack config, bad arguments or bad policy config; the reason is printed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from policy.hastack_policies.config_file import PolicyConfigError, load_policy_config

from .engine import PROJECT_DIR, ProgramError, stack_file_config, run_program
from .gate import evaluate
from .report import resource_tree, summary_line, verdict_lines

POLICY_DIR = PROJECT_DIR / "policy"
EXIT_PASS, EXIT_VIOLATIONS, EXIT_CANNOT_PLAN = 0, 1, 2


def shipped_stacks() -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help=f"stack name; alone it plans Pulumi.<stack>.yaml ({', '.join(shipped_stacks())})")
    parser.add_argument("--stack-file", type=Path, help="plan this stack file (the stack name defaults to its Pulumi.<name>.yaml)")
    parser.add_argument("--policy-config", type=Path, help="policy config JSON (default: policy/config.<stack>.json if present)")
    args = parser.parse_args(argv)
    if args.stack is None and args.stack_file is None:
        parser.error("give --stack or --stack-file")
    return args


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    stack_file = args.stack_file or PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    if not stack_file.is_file():
        print(f"plan: no stack file {stack_file}; shipped stacks: {', '.join(shipped_stacks())}", file=sys.stderr)
        return EXIT_CANNOT_PLAN
    stack = args.stack or stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    default_policy_config = POLICY_DIR / f"config.{stack}.json"
    policy_config = args.policy_config or (default_policy_config if default_policy_config.is_file() else None)

    try:
        settings = load_policy_config(policy_config)
    except PolicyConfigError as err:
        print(f"plan: invalid policy config:\n{err}", file=sys.stderr)
        return EXIT_CANNOT_PLAN
    try:
        run = run_program(stack_file_config(stack_file), stack)
    except ProgramError as err:
        print(f"plan: stack {stack} ({stack_file}): {err}", file=sys.stderr)
        return EXIT_CANNOT_PLAN

    verdicts = evaluate(run, settings)
    print(f"hastack plan: stack {stack} from {stack_file}, policy config {policy_config or 'pack defaults'}")
    for warning in run.warnings:
        print(f"warning: {warning}")
    print(f"\nResources ({len(run.resources)}):")
    print("\n".join(resource_tree(run)))
    print("\nPolicies:")
    print("\n".join(verdict_lines(run, verdicts, settings)))
    print(f"\n{summary_line(verdicts)}")
    return EXIT_VIOLATIONS if any(v.blocks for v in verdicts) else EXIT_PASS


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
