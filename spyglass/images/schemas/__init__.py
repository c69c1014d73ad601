"""The Images API JSON Schemas: served at /v2/schemas/* and used to validate request bodies."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

_DIR = Path(__file__).parent
NAMES = ("image", "images", "member", "members", "task", "tasks")


@cache
def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_DIR / f"{name}.json").read_text())
    return data


@cache
def validator(name: str) -> Draft4Validator:
    return Draft4Validator(schema(name))


@cache
def read_only_attributes() -> frozenset[str]:
    props = schema("image")["properties"]
    return frozenset(k for k, v in props.items() if v.get("readOnly"))


@cache
def core_attributes() -> frozenset[str]:
    return frozenset(schema("image")["properties"])
