"""SIGKILL a real `spyglass serve` in the middle of an upload, a stage and an import, start it again
on the same data directory: no image is stuck, no partial data is left, and a retry succeeds."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.clients import keystone_session
from tests.e2e.conftest import BIN, POSTGRES, Server, database_env, start_server, stop_server
from tests.http_source import http_source

CHUNK = os.urandom(1024 * 1024)
LOCAL = {"SPYGLASS_WEB_DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.1/32"}
# One process, so that killing it is the crash (with several workers, killing the parent leaves
# the workers to finish or clean up what they were doing).
ONE_PROCESS = ("--workers", "1")


class Api:
    def __init__(self, server: Server, token: str) -> None:
        self.url = f"{server.url}/image/v2/images"
        self.headers = {"X-Auth-Token": token}

    def create(self, **body: Any) -> str:
        body = {"disk_format": "raw", "container_format": "bare", **body}
        response = httpx.post(self.url, json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def show(self, image_id: str) -> dict[str, Any]:
        shown: dict[str, Any] = httpx.get(f"{self.url}/{image_id}", headers=self.headers).json()
        return shown

    def put(self, image_id: str, target: str, content: Any) -> httpx.Response:
        headers = {**self.headers, "Content-Type": "application/octet-stream"}
        return httpx.put(f"{self.url}/{image_id}/{target}", content=content, headers=headers, timeout=60)


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def kill_when(server: Server, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        assert time.monotonic() < deadline, "the server never reached the state to be killed in"
        time.sleep(0.02)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)


def endless_body(server: Server, api: Api, image_id: str, status: str) -> Iterator[bytes]:
    """Chunks until the server, having taken the image to `status`, is killed."""
    for sent in range(4096):
        yield CHUNK
        if sent == 64:
            kill_when(server, lambda: api.show(image_id)["status"] == status)


def restart_after_crash(data_dir: Path) -> tuple[Server, str]:
    """Start again as the README says: with SQLite `serve` recovers by itself; with a database server
    the operator runs `spyglass recover` first (every node stopped). Returns the server and the report."""
    if not POSTGRES:
        server = start_server(data_dir, *ONE_PROCESS, env=LOCAL)
        return server, server.log.read_text()
    env = {**os.environ, **database_env(data_dir)}
    recovered = subprocess.run(
        [str(BIN / "spyglass"), "--data-dir", str(data_dir), "recover"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return start_server(data_dir, *ONE_PROCESS, env=LOCAL), recovered.stdout


def test_kill_during_upload_stage_and_import_then_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir, *ONE_PROCESS, env=LOCAL)
    try:
        api = Api(first, keystone_session(first, "spyglass-a").get_token() or "")
        uploaded, staged, imported = (
            api.create(name="upload"),
            api.create(name="stage"),
            api.create(name="import"),
        )
        for image_id, target, status in ((uploaded, "file", "saving"), (staged, "stage", "uploading")):
            with contextlib.suppress(httpx.TransportError):
                api.put(image_id, target, endless_body(first, api, image_id, status))
            assert first.process.poll() is not None
            # The crash left partial data behind.
            assert any(
                name.endswith(".partial") for name in files(data_dir / "images") + files(data_dir / "staging")
            )
            first, report = restart_after_crash(data_dir)
            assert "Recovered from an interrupted run: 1 image(s) back to queued" in report
            api = Api(first, api.headers["X-Auth-Token"])
        with http_source() as source:
            uri = source.serve("/stalled.raw", b"late", stall=60)
            body = {"method": {"name": "web-download", "uri": uri}}
            response = httpx.post(f"{api.url}/{imported}/import", json=body, headers=api.headers)
            assert response.status_code == 202
            kill_when(first, lambda: source.requests == ["/stalled.raw"])
    finally:
        stop_server(first)

    second, report = restart_after_crash(data_dir)
    try:
        assert "Recovered from an interrupted run: 1 image(s) back to queued" in report
        api = Api(second, api.headers["X-Auth-Token"])
        for image_id in (uploaded, staged, imported):
            shown = api.show(image_id)
            assert (shown["status"], shown["size"], shown["checksum"]) == ("queued", None, None)
        after_import = api.show(imported)
        assert "os_glance_import_task" not in after_import
        assert after_import["os_glance_failed_import"] == "fs"
        # Its task ended in failure with the recovery's message.
        [task] = httpx.get(f"{api.url}/{imported}/tasks", headers=api.headers).json()["tasks"]
        assert task["status"] == "failure"
        assert task["message"] == "The server stopped while the task was running."
        assert files(data_dir / "images") == files(data_dir / "staging") == []

        data = {uploaded: CHUNK * 3, staged: CHUNK * 2}
        assert api.put(uploaded, "file", data[uploaded]).status_code == 204
        assert api.put(staged, "stage", data[staged]).status_code == 204
        response = httpx.post(
            f"{api.url}/{staged}/import", json={"method": {"name": "glance-direct"}}, headers=api.headers
        )
        assert response.status_code == 202
        deadline = time.monotonic() + 30
        while api.show(staged)["status"] != "active" and time.monotonic() < deadline:
            time.sleep(0.05)
        for image_id in (uploaded, staged):
            shown = api.show(image_id)
            assert (shown["status"], shown["checksum"]) == ("active", hashlib.md5(data[image_id]).hexdigest())
        assert len(files(data_dir / "images")) == 2
        assert files(data_dir / "staging") == []
    finally:
        stop_server(second)
