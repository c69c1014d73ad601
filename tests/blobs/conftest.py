"""A real one-node Swift (tempauth + s3api) for the Swift and S3 store tests.

scripts/swift-saio.sh installs it on first use (a venv and memcached, about 20 s) and starts it
(about 2 s); when it already runs, for example started by `make test` (scripts/with-swift.sh), it
is only reused. Under pytest-xdist a worker that started it leaves it running for the others. The
directory is SPYGLASS_SWIFT_SAIO_DIR, by default ~/.cache/spyglass/swift-saio, so the install
outlives checkouts. A Swift that cannot be installed or started fails the tests: nothing skips.

Each test gets its own container (or bucket), emptied and removed afterwards.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from swiftclient import ClientException, Connection

from spyglass.blobs.s3 import S3Config, S3Store
from spyglass.blobs.swift import SwiftConfig, SwiftStore

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "swift-saio.sh"
KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Saio:
    env: dict[str, str]

    def swift_config(self, container: str, **options: Any) -> SwiftConfig:
        env = self.env
        return SwiftConfig(
            container=container, auth_url=env["ST_AUTH"], user=env["ST_USER"], key=env["ST_KEY"], **options
        )

    def s3_config(self, bucket: str, **options: Any) -> S3Config:
        env = self.env
        return S3Config(
            bucket=bucket,
            endpoint_url=env["S3_ENDPOINT_URL"],
            region=env["S3_REGION"],
            access_key=env["S3_ACCESS_KEY_ID"],
            secret_key=env["S3_SECRET_ACCESS_KEY"],
            path_style=True,
            **options,
        )

    def admin(self) -> Connection:
        """A plain swiftclient connection, to look behind the stores' backs."""
        return Connection(authurl=self.env["ST_AUTH"], user=self.env["ST_USER"], key=self.env["ST_KEY"])


def _parse_exports(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if words[:1] == ["export"]:
            env.update(word.split("=", 1) for word in words[1:])
    return env


@pytest.fixture(scope="session")
def saio() -> Iterator[Saio]:
    directory = os.environ.get("SPYGLASS_SWIFT_SAIO_DIR") or str(Path.home() / ".cache/spyglass/swift-saio")
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", directory], capture_output=True, text=True, timeout=600, check=False
    )
    if started.returncode != 0:
        pytest.fail(f"swift-saio.sh start failed ({started.returncode}):\n{started.stderr}", pytrace=False)
    env = _parse_exports(started.stdout)
    yield Saio(env)
    # Leave a Swift that someone else started running, and one that other test workers may still use.
    if env.get("SWIFT_SAIO_STARTED") == "1" and "PYTEST_XDIST_WORKER" not in os.environ:
        subprocess.run(["bash", str(SCRIPT), "stop", directory], check=False, timeout=60)


def purge(conn: Connection, container: str) -> None:
    """Delete a container and everything in it (segments included), however it was left."""
    try:
        _, listing = conn.get_container(container, full_listing=True)
        for entry in listing:
            conn.delete_object(container, entry["name"])
        conn.delete_container(container)
    except ClientException as exc:
        if exc.http_status != 404:
            raise


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_swift_store(saio: Saio) -> Iterator[Callable[..., SwiftStore]]:
    """SwiftStore(**options) on a fresh container; tiny segments unless told otherwise."""
    made: list[SwiftConfig] = []

    def make(**options: Any) -> SwiftStore:
        options = {"segment_size": 256 * KiB, "buffer_size": 64 * KiB, **options}
        config = saio.swift_config(unique_name("spyglass-test"), **options)
        made.append(config)
        return SwiftStore(config)

    yield make
    conn = saio.admin()
    for config in made:
        purge(conn, config.container)
        purge(conn, config.segments)


@pytest.fixture
def make_s3_store(saio: Saio) -> Iterator[Callable[..., S3Store]]:
    """S3Store(**options) on a fresh bucket; the smallest part size S3 allows unless told otherwise."""
    made: list[S3Config] = []

    def make(**options: Any) -> S3Store:
        config = saio.s3_config(unique_name("spyglass-test"), **{"part_size": 5 * MiB, **options})
        made.append(config)
        return S3Store(config)

    yield make
    conn = saio.admin()
    for config in made:
        # s3api keeps a bucket's multipart parts in the container "<bucket>+segments".
        purge(conn, config.bucket)
        purge(conn, config.bucket + "+segments")


def same_bucket(store: S3Store, **options: Any) -> S3Store:
    """Another S3Store on `store`'s bucket with other options (credentials, endpoint)."""
    return S3Store(replace(store.config, **options))
