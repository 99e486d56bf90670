"""Run every bench script in this folder; each prints one JSON line per measured figure.

    uv run python -m bench              # all of them
    uv run python -m bench plan_speed   # just one

The scripts only target 127.0.0.1 and bound their load in count and time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bench_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str]) -> int:
    known = bench_names()
    chosen = argv or known
    unknown = [name for name in chosen if name not in known]
    if unknown:
        print(f"bench: unknown bench {', '.join(unknown)}; available: {', '.join(known)}", file=sys.stderr)
        return 2
    failed = 0
    for name in chosen:
        result = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
