"""Store settings: several named stores from TOML, validated once, carried to workers as JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from spyglass.blobs import FilesystemStore, MemoryStore
from spyglass.blobs.registry import build
from spyglass.blobs.specs import FilesystemConfig
from spyglass.blobs.swift import SwiftConfig
from spyglass.cli import _as_environment
from spyglass.settings import SettingsError, load_settings

CONFIG = """
[spyglass]
default_store = "mem"

[stores.fs]
type = "filesystem"
path = "{path}"
description = "local disks"

[stores.mem]
type = "memory"

[stores.swift1]
type = "swift"
auth_url = "http://127.0.0.1:8080/auth/v1.0"
user = "test:tester"
key = "very-secret"
container = "glance"
segment_size = 1048576
buffer_size = 65536
"""


def _load(tmp_path: Path, text: str, **environ: str) -> object:
    config = tmp_path / "spyglass.toml"
    config.write_text(text.replace("{path}", str(tmp_path / "fs")))
    return load_settings(config, environ={"SPYGLASS_DATA_DIR": str(tmp_path), **environ})


def test_no_stores_configured_is_one_filesystem_store(tmp_path: Path) -> None:
    settings = load_settings(environ={"SPYGLASS_DATA_DIR": str(tmp_path)})
    stores = build(settings.store_specs, settings.default_store_name)
    assert list(stores) == ["fs"] and stores.default_name == "fs"
    assert isinstance(stores.default, FilesystemStore) and stores.default.root == tmp_path / "images"


def test_stores_from_toml(tmp_path: Path) -> None:
    settings = _load(tmp_path, CONFIG)
    names = [spec.name for spec in settings.stores]  # type: ignore[attr-defined]
    assert names == ["fs", "mem", "swift1"]
    fs, _mem, swift = settings.stores  # type: ignore[attr-defined]
    assert fs.config == FilesystemConfig(tmp_path / "fs") and fs.description == "local disks"
    assert isinstance(swift.config, SwiftConfig)
    assert swift.config.segment_size == 1048576 and swift.config.name == "swift1"
    assert "key" not in swift.properties() and swift.properties()["container"] == "glance"
    assert settings.default_store_name == "mem"  # type: ignore[attr-defined]


def test_stores_travel_to_workers_as_json(tmp_path: Path) -> None:
    settings = _load(tmp_path, CONFIG)
    environment = _as_environment(settings)  # type: ignore[arg-type]
    again = load_settings(environ=environment)
    assert again.stores == settings.stores  # type: ignore[attr-defined]
    assert again.default_store == "mem"
    loaded = load_settings(environ={**environment, "SPYGLASS_STORES": environment["SPYGLASS_STORES"]})
    built = build(loaded.store_specs, loaded.default_store_name)
    assert isinstance(built["mem"], MemoryStore)


def test_workers_read_the_stores_from_the_config_file_not_the_environment(tmp_path: Path) -> None:
    settings = _load(tmp_path, CONFIG)
    environment = _as_environment(settings, tmp_path / "spyglass.toml")  # type: ignore[arg-type]
    assert "SPYGLASS_STORES" not in environment
    assert not [value for value in environment.values() if "very-secret" in value]
    again = load_settings(environ=environment)
    assert again.stores == settings.stores  # type: ignore[attr-defined]
    assert again.default_store == "mem"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[stores.x]\ntype = "tape"\n', "type must be one of"),
        ('[stores.x]\ntype = "filesystem"\npath = "/tmp/x"\ncolour = "red"\n', "unknown option"),
        ('[stores.x]\ntype = "swift"\ncontainer = "c"\n', "store 'x'"),
        ('[stores."a b"]\ntype = "memory"\n', "store name"),
        ('[stores.x]\ntype = "s3"\nbucket = "bkt"\npart_size = "big"\n', "invalid value"),
        ('default_store = "y"\n[stores.x]\ntype = "memory"\n', "default_store"),
    ],
)
def test_bad_stores_are_refused(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint):
        _load(tmp_path, text)
