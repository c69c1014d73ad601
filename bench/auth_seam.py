"""Requests per second of an authenticated `GET /v2/images/{id}`, old code against new, same run.

Starts a real `spyglass serve --demo` (one worker) for each code tree and each database, makes one
image as the demo user, and drives it with wrk: 8 keep-alive connections, one client thread. The
old tree is a checkout of an earlier commit, run with the same virtualenv through PYTHONPATH:

    git worktree add /tmp/bench-old 967cf77
    .venv/bin/python bench/auth_seam.py --old /tmp/bench-old \
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--seconds 10] [--rounds 2]

Rounds alternate old and new, so drift on a shared machine hits both; the best round is printed
with the others. Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

NEW = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "bench-admin-password"
# Runs the CLI as the console script would, from the tree on PYTHONPATH (and not from the working
# directory, which is elsewhere): the editable install's
# finder, which would import the new tree whatever the path says, is dropped first.
LAUNCH = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
    "import spyglass.api.app as app; print('code:', app.__file__, flush=True); "
    "from spyglass.cli import main; sys.exit(main(sys.argv[1:]))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_postgres(server: str, name: str) -> str:
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_postgres(server: str, names: list[str]) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


class Server:
    def __init__(self, code: Path, data_dir: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log = data_dir.parent / f"{data_dir.name}.log"
        env = {**os.environ, "PYTHONPATH": str(code), "SPYGLASS_ADMIN_PASSWORD": ADMIN_PASSWORD}
        if database_url:
            env["SPYGLASS_DATABASE_URL"] = database_url
        command = [sys.executable, "-c", LAUNCH, "--data-dir", str(data_dir), "serve"]
        command += ["--port", str(self.port), "--workers", "1", "--demo"]
        self.process = subprocess.Popen(
            command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=data_dir.parent
        )
        try:
            self._wait()
            running = re.search(r"code: (\S+)", self.log.read_text())
            if running is None or not running.group(1).startswith(str(code)):
                raise RuntimeError(f"the server does not run {code}: {running}")
        except BaseException:
            self.stop()
            raise

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"spyglass serve exited early:\n{self.log.read_text()}")
            try:
                httpx.get(self.url + "/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("spyglass serve did not start")

    def token(self) -> str:
        clouds = yaml.safe_load((self.data_dir / "clouds.yaml").read_text())
        auth = clouds["clouds"]["spyglass-a"]["auth"]
        user = {
            "name": auth["username"],
            "domain": {"name": auth["user_domain_name"]},
            "password": auth["password"],
        }
        project = {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {**user, "password": auth["password"]}},
                },
                "scope": {"project": project},
            }
        }
        response = httpx.post(f"{self.url}/identity/v3/auth/tokens", json=body)
        response.raise_for_status()
        return response.headers["X-Subject-Token"]

    def image_url(self, token: str) -> str:
        body = {"name": "bench", "disk_format": "raw", "container_format": "bare"}
        response = httpx.post(f"{self.url}/v2/images", json=body, headers={"X-Auth-Token": token})
        response.raise_for_status()
        return f"{self.url}/v2/images/{response.json()['id']}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wrk(url: str, token: str, seconds: int) -> tuple[float, str]:
    command = ["wrk", "-t1", "-c8", f"-d{seconds}s", "-H", f"X-Auth-Token: {token}", url]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = re.search(r"Latency\s+(\S+)", out)
    assert rate is not None and latency is not None, out
    return float(rate.group(1)), latency.group(1)


def measure(code: Path, work: Path, label: str, database: str, seconds: int) -> tuple[float, str]:
    server = Server(code, work / label, database)
    try:
        token = server.token()
        url = server.image_url(token)
        wrk(url, token, 2)  # warm-up: connection pools, statement caches
        return wrk(url, token, seconds)
    finally:
        server.stop()


def run(args: argparse.Namespace, backend: str, work: Path) -> None:
    rates: dict[str, list[float]] = {"old": [], "new": []}
    for round_no in range(args.rounds):
        for name, code in (("old", args.old.resolve()), ("new", NEW)):
            label = f"{backend}-{name}-{round_no}"
            database = fresh_postgres(args.postgres, f"bench_auth_{name}") if backend == "postgresql" else ""
            rate, latency = measure(code, work, label, database, args.seconds)
            rates[name].append(rate)
            print(
                f"{backend:10} {name:3} round {round_no}: {rate:8.0f} req/s  (mean latency {latency})",
                flush=True,
            )
    old, new = max(rates["old"]), max(rates["new"])
    print(
        f"{backend:10} best: old {old:.0f} req/s, new {new:.0f} req/s, new/old {new / old:.2f}x", flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old", type=Path, default=Path("/tmp/bench-old"), help="checkout of the old code")
    parser.add_argument("--postgres", default="", help="PostgreSQL server URL; also measure there")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not (args.old / "spyglass").is_dir():
        sys.exit(f"no old tree at {args.old}: git worktree add {args.old} 967cf77")
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        run(args, "sqlite", Path(tmp))
        if args.postgres:
            run(args, "postgresql", Path(tmp))
            drop_postgres(args.postgres, ["bench_auth_old", "bench_auth_new"])


if __name__ == "__main__":
    main()
