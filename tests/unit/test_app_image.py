"""The reference app's image inputs: pinned requirements that match uv.lock, and a
Dockerfile that keeps the properties the platform relies on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_app_group() -> dict[str, str]:
    """`{package: version}` for the `app` dependency group and everything it pulls in,
    as resolved in uv.lock."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    packages = {_normalize(p["name"]): p for p in lock["package"]}
    root = next(p for p in lock["package"] if p.get("source", {}).get("virtual") == ".")
    pending = list(root["dev-dependencies"]["app"])
    resolved: dict[str, str] = {}
    while pending:
        dependency = pending.pop()
        name = _normalize(dependency["name"])
        package = packages[name]
        for extra in dependency.get("extra", []):
            pending += package.get("optional-dependencies", {}).get(extra, [])
        if name not in resolved:
            resolved[name] = package["version"]
            pending += package.get("dependencies", [])
    return resolved


def pinned_requirements() -> dict[str, str]:
    pins = {}
    for line in (APP / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].split(";", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            assert version, f"unpinned requirement in app/requirements.txt: {line!r}"
            pins[_normalize(name)] = version
    return pins


def test_requirements_match_uv_lock_exactly():
    assert pinned_requirements() == locked_app_group(), (
        "app/requirements.txt drifted from uv.lock; regenerate it with the command in its header")


def test_dockerfile_is_pinned_non_root_and_health_checked():
    dockerfile = (APP / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim-\w+$", dockerfile, re.M), "pin python slim by version"
    user = re.search(r"^USER (\S+)$", dockerfile, re.M)
    assert user and user.group(1).split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n.*python .*/readyz", dockerfile, re.M)
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.M)
    assert 'CMD ["python", "-m", "hastack_app"]' in dockerfile
    assert "COPY requirements.txt" in dockerfile and "-r requirements.txt" in dockerfile
