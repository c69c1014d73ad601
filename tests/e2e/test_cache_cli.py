"""The image cache in a real `spyglass serve` whose only store is the real Swift of
tests/blobs/conftest.py, driven by the real openstack CLI: `openstack cached image list | queue |
delete | clear` (API 2.14, admin only), downloads filled into the cache and served from it, and
an image deleted through the CLI leaving the cache."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.blobs import conftest as blobs
from tests.blobs.conftest import Saio, purge, unique_name
from tests.e2e.conftest import Server, start_server, stop_server

saio = blobs.saio

DATA = os.urandom(3 * 1024 * 1024 + 5)
# The CLI needs no --os-image-api-version for these; the queue test gives it all the same.
CACHED = ("cached", "image")
CACHED_2_14 = ("--os-image-api-version", "2.14", *CACHED)


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory, saio: Saio) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cache")
    container = unique_name("spyglass-e2e-cache")
    env = saio.env
    config = root / "spyglass.toml"
    config.write_text(
        f"""
image_cache = true
image_cache_max_size = {160 * 1024 * 1024}

[stores.swift1]
type = "swift"
auth_url = "{env["ST_AUTH"]}"
user = "{env["ST_USER"]}"
key = "{env["ST_KEY"]}"
container = "{container}"
"""
    )
    # One worker process: two fills of one image exclude each other through flock on separate
    # opens of the file, the same within a process as across processes (tests/data/test_cache*.py),
    # and a multi-worker start is slow enough on a loaded machine for uvicorn to kill its workers.
    running = start_server(root / "data", env={"SPYGLASS_CONFIG": str(config)})
    yield running
    stop_server(running)
    conn = saio.admin()
    purge(conn, container)
    purge(conn, container + "_segments")


def _listing(server: Server) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = server.openstack_json("spyglass-admin", *CACHED, "list")
    return rows


def _states(server: Server) -> dict[str, str]:
    return {row["ID"]: row["State"] for row in _listing(server)}


def _upload(server: Server, tmp_path: Path, name: str) -> str:
    source = tmp_path / f"{name}.raw"
    source.write_bytes(DATA)
    image_id: str = server.create_image("spyglass-a", name, "--file", str(source))["id"]
    return image_id


def test_download_fills_the_cache_and_delete_empties_it(cached: Server, tmp_path: Path) -> None:
    image_id = _upload(cached, tmp_path, "filled")
    assert image_id not in _states(cached)
    saved = tmp_path / "saved.raw"
    cached.openstack("spyglass-a", "image", "save", "--file", str(saved), image_id)
    assert saved.read_bytes() == DATA
    # Installed before the last bytes went out.
    (row,) = [row for row in _listing(cached) if row["ID"] == image_id]
    assert (row["State"], row["Size"], row["Hits"]) == ("cached", len(DATA), 0)
    cached.openstack("spyglass-a", "image", "save", "--file", str(saved), image_id)
    assert saved.read_bytes() == DATA
    (row,) = [row for row in _listing(cached) if row["ID"] == image_id]
    assert row["Hits"] == 1
    files = cached.data_dir / "image-cache"
    assert (files / image_id).read_bytes() == DATA
    cached.openstack("spyglass-a", "image", "delete", image_id)
    assert image_id not in _states(cached)
    assert not (files / image_id).exists()


def test_queue_delete_and_clear(cached: Server, tmp_path: Path) -> None:
    first, second = _upload(cached, tmp_path, "queued-1"), _upload(cached, tmp_path, "queued-2")
    cached.openstack("spyglass-admin", *CACHED_2_14, "queue", first, second)
    deadline = time.monotonic() + 60
    while [_states(cached).get(i) for i in (first, second)] != ["cached", "cached"]:
        assert time.monotonic() < deadline, _listing(cached)
        time.sleep(0.5)
    cached.openstack("spyglass-admin", *CACHED_2_14, "delete", first)
    assert first not in _states(cached)
    cached.openstack("spyglass-admin", *CACHED, "clear", "--queue")
    assert _states(cached).get(second) == "cached"
    cached.openstack("spyglass-admin", *CACHED, "clear")
    assert _states(cached) == {}


def test_the_cache_commands_are_for_admins(cached: Server, tmp_path: Path) -> None:
    image_id = _upload(cached, tmp_path, "not-yours-to-cache")
    for command in (("list",), ("queue", image_id), ("delete", image_id), ("clear",)):
        result = cached.openstack("spyglass-a", *CACHED, *command, check=False)
        assert result.returncode != 0, command
        if command == ("list",):
            assert "403" in result.stderr or "Forbidden" in result.stderr, result.stderr


def test_a_download_cut_short_leaves_nothing_in_the_cache(cached: Server, tmp_path: Path) -> None:
    source = tmp_path / "large.raw"
    source.write_bytes(os.urandom(64 * 1024 * 1024))
    image_id = cached.create_image("spyglass-a", "cut-short", "--file", str(source))["id"]
    token = cached.openstack_json("spyglass-a", "token", "issue")["id"]
    with httpx.stream("GET", f"{cached.url}/v2/images/{image_id}/file", headers={"X-Auth-Token": token}) as r:
        assert r.status_code == 200
        received = 0
        for chunk in r.iter_raw():
            received += len(chunk)
            if received >= 1024 * 1024:
                break  # the client goes away after a MiB
    files = cached.data_dir / "image-cache"
    deadline = time.monotonic() + 30
    while list((files / "incomplete").iterdir()):
        assert time.monotonic() < deadline, "the cut-short fill was not discarded"
        time.sleep(0.2)
    assert image_id not in _states(cached)
    assert not (files / image_id).exists()
    # The next whole download fills it.
    saved = tmp_path / "saved.raw"
    cached.openstack("spyglass-a", "image", "save", "--file", str(saved), image_id)
    assert saved.read_bytes() == source.read_bytes()
    assert _states(cached)[image_id] == "cached"
