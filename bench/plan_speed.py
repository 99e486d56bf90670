"""Plan speed: `python -m plan --stack prod` as a whole process, next to `import pulumi`.

    uv run python -m bench plan_speed           # PLAN_SPEED_RUNS=5 by default

Each figure is the median wall time of N fresh processes, measured in the same run so
machine load hits both alike. Prints one JSON line per figure:
- plan_prod_seconds: the offline plan and policy gate of the prod (Azure) stack;
- import_pulumi_seconds: the baseline, `python -c "import pulumi"`;
- azure_sdk_import_seconds: loading just the azure-native classes the program uses,
  the floor under any run of the Azure program (the plan's own work is on top);
- plan_dev_seconds: the same for the dev (Docker) stack, which loads no Azure SDK;
- plan_prod_ratio, plan_dev_ratio: plan / baseline (target <= 3), and
  azure_sdk_import_ratio: how much of the prod ratio the Azure SDK alone takes.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("PLAN_SPEED_RUNS", "5"))
TARGET_RATIO = 3.0


def azure_sdk_loader() -> str:
    """Python that loads every azure-native class the Azure components use, and nothing else.

    azure-native modules are lazy: `import pulumi_azure_native.network` costs nothing until
    a class is touched, and then the module loads whole. So the floor is touching them."""
    source = "\n".join(p.read_text() for p in (REPO / "components" / "azure").glob("*.py"))
    aliases = dict(re.findall(r"^import (pulumi_azure_native\.\w+) as (\w+)", source, re.MULTILINE))
    lines = [f"import {module} as {alias}" for module, alias in sorted(aliases.items())]
    for alias in sorted(set(aliases.values())):
        lines += [f"{alias}.{name}" for name in sorted(set(re.findall(rf"\b{alias}\.([A-Z]\w*)", source)))]
    return "\n".join(lines)


def median_seconds(command: list[str]) -> float:
    # One untimed run first, so the OS file cache (and Python's bytecode cache, when on) is warm.
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, capture_output=True)
        samples.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr.decode()}")
    return statistics.median(samples)


def main() -> None:
    commands = {
        "plan_prod_seconds": [sys.executable, "-m", "plan", "--stack", "prod"],
        "plan_dev_seconds": [sys.executable, "-m", "plan", "--stack", "dev"],
        "import_pulumi_seconds": [sys.executable, "-c", "import pulumi"],
        "azure_sdk_import_seconds": [sys.executable, "-c", azure_sdk_loader()],
    }
    seconds = {figure: median_seconds(command) for figure, command in commands.items()}
    for figure, value in seconds.items():
        print(json.dumps({"figure": figure, "value": round(value, 3), "unit": "s", "runs": RUNS}))
    baseline = seconds["import_pulumi_seconds"]
    for stack in ("prod", "dev"):
        ratio = seconds[f"plan_{stack}_seconds"] / baseline
        print(json.dumps({"figure": f"plan_{stack}_ratio", "value": round(ratio, 2), "target": TARGET_RATIO, "met": ratio <= TARGET_RATIO}))
    print(json.dumps({"figure": "azure_sdk_import_ratio", "value": round(seconds["azure_sdk_import_seconds"] / baseline, 2)}))


if __name__ == "__main__":
    main()
