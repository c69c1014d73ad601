"""A snapshot's way into the image service: uploaded through the API, or added as a location.

Starts a real `spyglass serve --demo` (SQLite, one filesystem store), makes a service user `nova`
(role `service` in project `service`), and for one data size times, in the same run:

- upload: create an image and `PUT /file` the data (what a standard snapshot does);
- location: write the data into the store's directory (as a hypervisor on shared storage would),
  create an image and `POST /locations` its URL with the service token, until the image is active,
  and until its hashes are known (the background reading of `do_secure_hash`).

    .venv/bin/python bench/direct_snapshot.py [--mib 256] [--rounds 3]

Prints seconds per step and the ratios (best round of each); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import yaml

ADMIN_PASSWORD = "bench-admin-password"
CHUNK = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "SPYGLASS_ADMIN_PASSWORD": ADMIN_PASSWORD}
    spyglass = Path(sys.executable).parent / "spyglass"
    process = subprocess.Popen(
        [str(spyglass), "--data-dir", str(data_dir), "serve", "--port", str(port), "--demo"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("spyglass serve did not start")


def token(url: str, user: str, password: str, project: str, domain: str = "Default") -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"name": domain}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"name": domain}}},
        }
    }
    response = httpx.post(f"{url}/identity/v3/auth/tokens", json=body)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def make_service_user(url: str) -> str:
    admin = {"X-Auth-Token": token(url, "admin", ADMIN_PASSWORD, "admin")}
    v3 = f"{url}/identity/v3"
    project = httpx.post(f"{v3}/projects", headers=admin, json={"project": {"name": "service"}}).json()
    user_body = {
        "user": {"name": "nova", "password": "nova-password", "default_project_id": project["project"]["id"]}
    }
    user = httpx.post(f"{v3}/users", headers=admin, json=user_body).json()["user"]
    roles = httpx.get(f"{v3}/roles", headers=admin, params={"name": "service"}).json()["roles"]
    grant = f"{v3}/projects/{project['project']['id']}/users/{user['id']}/roles/{roles[0]['id']}"
    httpx.put(grant, headers=admin).raise_for_status()
    return token(url, "nova", "nova-password", "service")


def demo_user(url: str, data_dir: Path) -> str:
    auth = yaml.safe_load((data_dir / "clouds.yaml").read_text())["clouds"]["spyglass-a"]["auth"]
    return token(url, auth["username"], auth["password"], auth["project_name"])


def pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def create(client: httpx.Client) -> str:
    body = {"name": f"snap-{uuid.uuid4().hex[:8]}", "disk_format": "raw", "container_format": "bare"}
    response = client.post("/v2/images", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


def wait(client: httpx.Client, image_id: str, done: Callable[[dict[str, object]], bool]) -> None:
    while not done(client.get(f"/v2/images/{image_id}").json()):
        time.sleep(0.01)


def by_upload(client: httpx.Client, source: Path) -> dict[str, float]:
    began = time.perf_counter()
    image_id = create(client)
    headers = {"Content-Type": "application/octet-stream"}
    client.put(f"/v2/images/{image_id}/file", content=pieces(source), headers=headers).raise_for_status()
    return {"active": time.perf_counter() - began}


def by_location(client: httpx.Client, service: str, source: Path, store_dir: Path) -> dict[str, float]:
    began = time.perf_counter()
    target = (store_dir / str(uuid.uuid4())).resolve()
    with target.open("wb") as out:
        for chunk in pieces(source):
            out.write(chunk)
    written = time.perf_counter()
    image_id = create(client)
    response = client.post(
        f"/v2/images/{image_id}/locations",
        json={"url": target.as_uri()},
        headers={"X-Service-Token": service},
    )
    response.raise_for_status()
    wait(client, image_id, lambda image: image["status"] == "active")
    active = time.perf_counter()
    wait(client, image_id, lambda image: bool(image["os_hash_value"]))
    hashed = time.perf_counter()
    return {"write": written - began, "active": active - began, "hashed": hashed - began}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        source = Path(tmp) / "snapshot.raw"
        with source.open("wb") as out:
            for _ in range(args.mib):
                out.write(os.urandom(CHUNK))
        process, url = start(data_dir)
        try:
            service = make_service_user(url)
            client = httpx.Client(
                base_url=url, headers={"X-Auth-Token": demo_user(url, data_dir)}, timeout=600
            )
            uploads, locations = [], []
            for _ in range(args.rounds):
                uploads.append(by_upload(client, source))
                locations.append(by_location(client, service, source, data_dir / "images"))
        finally:
            process.terminate()
            process.wait(10)
    best_upload = min(r["active"] for r in uploads)
    best = {key: min(r[key] for r in locations) for key in ("write", "active", "hashed")}
    print(f"data: {args.mib} MiB, rounds: {args.rounds} (best of each)")
    print(f"upload through the API, until active:        {best_upload:7.2f} s")
    print(f"location: hypervisor writes into the store:   {best['write']:7.2f} s")
    print(f"location: written + added, until active:      {best['active']:7.2f} s")
    print(f"location: ... until the hashes are known:     {best['hashed']:7.2f} s")
    print(f"active, location vs upload: {best['active'] / best_upload:.2f}x the time")
    print(f"adding the location alone (after the write): {best['active'] - best['write']:.3f} s")
    print("rounds (upload active; location write/active/hashed):")
    for up, loc in zip(uploads, locations, strict=True):
        print(f"  {up['active']:.2f}  {loc['write']:.2f}/{loc['active']:.2f}/{loc['hashed']:.2f}")


if __name__ == "__main__":
    main()
