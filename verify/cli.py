"""Command line: parse arguments, reach the stack, run the checks, print the table.

Exit status: 0 every check passed, 1 a check failed, 2 bad arguments or the URL
cannot be reached (one line on stderr).
"""

from __future__ import annotations

import argparse
import functools
import sys
from urllib.parse import urlsplit

import httpx

from .checks import (CheckResult, Stack, every_replica_answers, every_replica_ready, files_are_shared,
                     jobs_run_once, notes_survive_retries)

USAGE_ERROR = 2


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints the whole usage on an error; a script calling us wants one line."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"verify: {message} (see --help)\n")


def _stack_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"URL must look like http://host:port, got {value!r}")
    return value.rstrip("/")


def _readable_file(value: str) -> str:
    try:
        with open(value, "rb"):
            return value
    except OSError as problem:
        raise argparse.ArgumentTypeError(f"cannot read {value!r}: {problem.strerror}") from None


def _positive(kind):
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
        if number <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {value!r}")
        return number
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineArgumentParser(
        prog="python -m verify",
        description="Check a running hastack stack's HA claims through its load balancer.")
    parser.add_argument("url", type=_stack_url, help="the stack's URL, e.g. http://localhost:8080")
    parser.add_argument("--replicas", type=_positive(int), required=True,
                        help="how many app replicas the stack should have")
    parser.add_argument("--timeout", type=_positive(float), default=5.0, metavar="SECONDS",
                        help="per-request timeout (default 5)")
    parser.add_argument("--cacert", type=_readable_file, metavar="FILE",
                        help="PEM CA to verify an https:// URL with, e.g. the stack's "
                             "`pulumi stack output caCertificate` (default: the system's CAs)")
    parser.add_argument("--jobs-deadline", type=_positive(float), default=60.0, metavar="SECONDS",
                        help="how long the job batch may take (default 60)")
    return parser.parse_args(argv)


def format_table(results: list[CheckResult]) -> str:
    width = max(len(result.name) for result in results)
    lines = [f"{'CHECK':<{width}}  RESULT  DETAIL"]
    lines += [f"{r.name:<{width}}  {'PASS' if r.passed else 'FAIL':<6}  {r.detail}" for r in results]
    failed = sum(not r.passed for r in results)
    lines.append(f"\n{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stack = Stack(args.url, args.timeout, args.cacert)
    try:
        try:
            stack.request("GET", "/")
        except httpx.HTTPError as problem:
            print(f"verify: cannot reach {args.url}: {problem or type(problem).__name__}", file=sys.stderr)
            return USAGE_ERROR
        checks = [every_replica_answers, files_are_shared, notes_survive_retries,
                  functools.partial(jobs_run_once, deadline_s=args.jobs_deadline), every_replica_ready]
        print(f"verify {args.url}, expecting {args.replicas} replicas\n")
        results = [check(stack, args.replicas) for check in checks]
    finally:
        stack.close()
    print(format_table(results))
    return 0 if all(result.passed for result in results) else 1

