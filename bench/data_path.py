"""Upload and download throughput of a real `spyglass serve`, next to baselines from the same run.

Generates a file (default 2 GiB), starts a server on a free port with a fresh data directory,
then prints MB/s for: md5+sha512 in two threads (hashlib, the upload's ceiling), a plain read of
the file, upload and download with curl, upload and download with openstacksdk, and 4 parallel
curl uploads and downloads. Numbers only; nothing is asserted.

    .venv/bin/python bench/data_path.py [--size-mib 2048] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import start_server, stop_server  # noqa: E402

CHUNK = 8 * 1024 * 1024


def generate(path: Path, size_mib: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as handle:
        for i in range(size_mib * 1024 * 1024 // CHUNK):
            # Vary each block a little so nothing downstream can deduplicate it.
            handle.write(i.to_bytes(8, "little") + block[8:])


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def hash_two_threads(path: Path) -> None:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            a = threading.Thread(target=md5.update, args=(chunk,))
            a.start()
            sha.update(chunk)
            a.join()


def read_file(path: Path) -> None:
    with path.open("rb") as handle:
        while handle.readinto(bytearray(CHUNK)):
            pass


def token_for(server_url: str, clouds: dict[str, object], cloud: str) -> str:
    auth = clouds["clouds"][cloud]["auth"]  # type: ignore[index]
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": auth["username"],
                        "domain": {"name": auth["user_domain_name"]},
                        "password": auth["password"],
                    }
                },
            },
            "scope": {
                "project": {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}
            },
        }
    }
    response = httpx.post(f"{server_url}/identity/v3/auth/tokens", json=body)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def new_image(url: str, token: str, name: str) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    response = httpx.post(f"{url}/v2/images", json=body, headers={"X-Auth-Token": token})
    response.raise_for_status()
    image_id: str = response.json()["id"]
    return image_id


def curl(*args: str) -> None:
    subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    import yaml

    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="spyglass-bench-"))
    source = work / "image.raw"
    generate(source, args.size_mib)
    megabytes = source.stat().st_size / 1e6
    rows: list[tuple[str, float]] = []

    def record(label: str, seconds: float, streams: int = 1) -> None:
        rows.append((label, megabytes * streams / seconds))
        print(f"{label:44} {megabytes * streams / seconds:9.0f} MB/s", flush=True)

    read_file(source)  # warm the page cache for every reader alike
    record("baseline: md5+sha512, two threads", timed(lambda: hash_two_threads(source)))
    record("baseline: plain file read", timed(lambda: read_file(source)))

    server = start_server(work / "data")
    try:
        clouds = yaml.safe_load(server.clouds_yaml.read_text())
        token = token_for(server.url, clouds, "spyglass-a")
        headers = ["-H", f"X-Auth-Token: {token}"]
        image = new_image(server.url, token, "curl")
        file_url = f"{server.url}/v2/images/{image}/file"
        record(
            "curl upload",
            timed(
                lambda: curl(
                    "-T", str(source), "-H", "Content-Type: application/octet-stream", *headers, file_url
                )
            ),
        )
        record("curl download", timed(lambda: curl(*headers, file_url)))

        images = [new_image(server.url, token, f"p{i}") for i in range(4)]

        def parallel(make: Callable[[str], list[str]]) -> float:
            procs = []
            began = time.perf_counter()
            for image_id in images:
                procs.append(subprocess.Popen(["curl", "-sS", "-f", "-o", "/dev/null", *make(image_id)]))
            for proc in procs:
                if proc.wait() != 0:
                    raise RuntimeError("curl failed")
            return time.perf_counter() - began

        upload4 = parallel(
            lambda i: [
                "-T",
                str(source),
                "-H",
                "Content-Type: application/octet-stream",
                *headers,
                f"{server.url}/v2/images/{i}/file",
            ]
        )
        record("4 parallel curl uploads (aggregate)", upload4, streams=4)
        download4 = parallel(lambda i: [*headers, f"{server.url}/v2/images/{i}/file"])
        record("4 parallel curl downloads (aggregate)", download4, streams=4)

        import openstack

        os.environ["OS_CLIENT_CONFIG_FILE"] = str(server.clouds_yaml)
        conn = openstack.connect(cloud="spyglass-a")
        created: list[object] = []
        record(
            "openstacksdk upload (create_image)",
            timed(
                lambda: created.append(
                    conn.image.create_image(
                        name="sdk",
                        filename=str(source),
                        disk_format="raw",
                        container_format="bare",
                        validate_checksum=False,
                    )
                )
            ),
        )
        target = work / "download.raw"
        record(
            "openstacksdk download (download_image)",
            timed(lambda: conn.image.download_image(created[0], output=str(target), stream=True)),
        )
        target.unlink()
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({label: round(value) for label, value in rows}))


if __name__ == "__main__":
    main()
