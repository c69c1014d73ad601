"""The configured blob stores, as Glance's multi-store: a named list of stores and a default.

In the TOML config file each store is a table under `stores`, named by its identifier:

    default_store = "fs"
    [stores.fs]
    type = "filesystem"
    path = "/var/lib/spyglass/images"
    [stores.swift1]
    type = "swift"
    auth_url = "http://127.0.0.1:8080/auth/v1.0"
    user = "test:tester"
    key = "testing"
    container = "glance"

The options of a `swift` store are the fields of SwiftConfig, those of an `s3` store the fields of
S3Config; `filesystem` takes `path` and `direct_io`, `memory` nothing. Every store may have a `description`.
Each table is validated once into a StoreSpec holding a typed, frozen config object. Worker
processes receive the list as JSON (`to_json`, read back by `parse`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from spyglass.blobs.configs import S3Config, SwiftConfig

STORE_TYPES = ("filesystem", "memory", "swift", "s3")
# Store identifiers appear in headers, URLs and comma-separated properties.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class StoreSettingsError(ValueError):
    """A store is configured with a value Spyglass cannot run with."""


@dataclass(frozen=True)
class FilesystemConfig:
    path: Path
    # Write image data with O_DIRECT, past the page cache (spyglass.blobs.filesystem).
    direct_io: bool = True


@dataclass(frozen=True)
class MemoryConfig:
    pass


StoreConfig = FilesystemConfig | MemoryConfig | SwiftConfig | S3Config
_CONFIG_CLASSES: dict[str, type[Any]] = {
    "filesystem": FilesystemConfig,
    "memory": MemoryConfig,
    "swift": SwiftConfig,
    "s3": S3Config,
}
# Never shown by GET /v2/info/stores/detail.
SECRET_OPTIONS = frozenset({"key", "secret_key", "access_key", "password"})


@dataclass(frozen=True)
class StoreSpec:
    name: str
    type: str
    config: StoreConfig
    description: str = ""

    def properties(self) -> dict[str, Any]:
        """The store's options that are safe to show an administrator."""
        shown = {}
        for item in dataclasses.fields(self.config):
            value = getattr(self.config, item.name)
            if item.name in SECRET_OPTIONS or item.name == "name" or value is None:
                continue
            shown[item.name] = str(value) if isinstance(value, Path) else value
        return shown


def filesystem(name: str, path: Path, description: str = "") -> StoreSpec:
    return StoreSpec(name, "filesystem", FilesystemConfig(path), description)


def parse(raw: Any) -> tuple[StoreSpec, ...]:
    """Stores from a TOML table {name: {type, options...}} or its JSON text (the environment)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise StoreSettingsError(f"stores: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise StoreSettingsError("stores must be a table of named stores")
    return tuple(_spec(name, table) for name, table in raw.items())


def _spec(name: str, table: Any) -> StoreSpec:
    if not _IDENTIFIER.match(name):
        raise StoreSettingsError(f"store name {name!r}: use letters, digits, '-' and '_' (at most 64)")
    if not isinstance(table, dict):
        raise StoreSettingsError(f"store {name!r} must be a table")
    options = dict(table)
    kind = options.pop("type", None)
    if kind not in STORE_TYPES:
        raise StoreSettingsError(f"store {name!r}: type must be one of {', '.join(STORE_TYPES)}")
    description = str(options.pop("description", ""))
    return StoreSpec(name, kind, _config(name, kind, options), description)


def _config(name: str, kind: str, options: dict[str, Any]) -> StoreConfig:
    cls = _CONFIG_CLASSES[kind]
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)} - {"name"}
    unknown = set(options) - fields
    if unknown:
        raise StoreSettingsError(f"store {name!r}: unknown option(s) {', '.join(sorted(unknown))}")
    values = {key: _coerce(name, key, hints[key], raw) for key, raw in options.items()}
    if kind in ("swift", "s3"):
        values["name"] = name
    try:
        config: StoreConfig = cls(**values)
    except (TypeError, ValueError) as exc:
        raise StoreSettingsError(f"store {name!r}: {exc}") from exc
    return config


def _coerce(store: str, key: str, kind: Any, raw: Any) -> Any:
    optional = get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind)
    if optional:
        if raw is None:
            return None
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            raise ValueError(raw)
        if kind is Path:
            return Path(str(raw)).expanduser()
        if kind in (int, float):
            if isinstance(raw, bool):
                raise ValueError(raw)
            return kind(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise StoreSettingsError(f"store {store!r}: option {key!r} has an invalid value {raw!r}") from exc


def to_json(specs: tuple[StoreSpec, ...]) -> str:
    """The stores as JSON text that `parse` reads back (for worker processes)."""
    tables: dict[str, Any] = {}
    for spec in specs:
        options = {
            f.name: _plain(getattr(spec.config, f.name))
            for f in dataclasses.fields(spec.config)
            if f.name != "name"
        }
        tables[spec.name] = {"type": spec.type, "description": spec.description, **options}
    return json.dumps(tables)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value
