"""Loading and schema-checking infra/ files without Docker or a cluster: YAML parsed, compose
interpolated as compose does, schemas from check-jsonschema's vendored copies."""

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from forgestack_shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SETTINGS = frozenset(name.upper() for name in Settings.model_fields)
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def vendored_schema(name: str) -> dict[str, Any]:
    """A schema check-jsonschema ships (compose-spec, github-workflows): no network needed."""
    folder = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((folder / f"{name}.json").read_text())
    return schema


def validate(document: object, schema: dict[str, Any]) -> None:
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def env_file(path: Path) -> dict[str, str]:
    pairs = (ln.split("=", 1) for ln in path.read_text().splitlines() if ln and ln[0] != "#")
    return dict(pairs)


def variables_used(text: str) -> set[str]:
    return {match[1] for match in _VARIABLE.finditer(text)}


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`; an unset required one fails."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match[1], match[2], match[3]
        if values.get(name):
            return values[name]
        if op and op.endswith("-"):
            return arg
        raise AssertionError(f"${{{name}}} is unset: {arg or 'no default'}")

    return _VARIABLE.sub(replace, text)


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
