"""docs/config.md documents exactly the keys the config models accept."""

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from components.config import StackConfig

CONFIG_DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def model_of(annotation) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def key_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every leaf key path, by alias (`app.replicas`, `database.managed.tier`, ...)."""
    paths = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        nested = model_of(field.annotation)
        paths |= key_paths(nested, f"{path}.") if nested else {path}
    return paths


def documented_keys() -> set[str]:
    return set(re.findall(r"^\| `([A-Za-z0-9.]+)` \|", CONFIG_DOC.read_text(), flags=re.MULTILINE))


def test_every_config_key_is_documented():
    missing = key_paths(StackConfig) - documented_keys()
    assert not missing, f"add rows to docs/config.md for: {sorted(missing)}"


def test_every_documented_key_exists():
    stale = documented_keys() - key_paths(StackConfig)
    assert not stale, f"docs/config.md documents keys the models do not accept: {sorted(stale)}"
