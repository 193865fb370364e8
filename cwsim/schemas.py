"""The bundled OpenAPI subset (real ConnectWise names and types) plus the extra shapes we serve."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

SPEC_DIR = Path(__file__).parent / "spec"


@lru_cache(maxsize=1)
def components() -> dict[str, dict]:
    """Component schemas by name: the subset's, then the extra shapes of ``extra-schemas.json``."""
    schemas = dict(json.loads((SPEC_DIR / "openapi-subset.json").read_text())["components"]["schemas"])
    schemas.update(json.loads((SPEC_DIR / "extra-schemas.json").read_text())["components"]["schemas"])
    return schemas


def property_names(schema_name: str) -> frozenset[str]:
    return frozenset(components()[schema_name].get("properties", {}))


def has_path(schema_name: str, path: tuple[str, ...]) -> bool:
    """Whether ``a/b/c`` names a property reachable through ``$ref``s and arrays of ``schema_name``."""
    schema = components()[schema_name]
    for part in path:
        props = schema.get("properties")
        if props is None:
            # Free-form maps (`_info`) and objects (`customFields/value`) accept any key.
            return schema.get("type") == "object" or "additionalProperties" in schema
        if part not in props:
            return False
        schema = props[part]
        if schema.get("type") == "array":
            schema = schema.get("items", {})
        if "$ref" in schema:
            schema = components()[schema["$ref"].rsplit("/", 1)[-1]]
    return True
