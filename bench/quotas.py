"""What quotas cost: `POST /v2/images` requests per second and upload throughput, quotas on vs off,
same run.

Starts a real `spyglass serve --demo` (one worker) per round, with limits registered for all four of
Glance's resources (high enough never to refuse), once with `quota_enforcement` on and once off, and
measures on each:

- creates: wrk posting `POST /v2/images` for --seconds on 8 keep-alive connections;
- in process: `create_image` on vs off in interleaved batches, the service's own cost, and the SQL
  statements (round trips) one create sends, on vs off;
- uploads: --uploads uploads of --size-mib MiB each, one at a time, half with Content-Length and half
  chunked (unknown length: the reservation grows as the data comes), in MiB/s.

    .venv/bin/python bench/quotas.py [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--seconds 10] [--rounds 2] [--uploads 6] [--size-mib 64] [--old REV]

With --old REV, the same rounds also run a server from REV (checked out in a temporary git
worktree), so the new code's cost with quotas off shows next to the ratio.

Rounds alternate on and off, so drift on a shared machine hits both; every round is printed, then
the ratio of the best on to the best off. Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).parent))
from data_path import token_for
from small_requests import LAUNCH, NEW, ensure_wrk, old_tree

ADMIN_PASSWORD = "bench-admin-password"
RESOURCES = ("image_size_total", "image_stage_total", "image_count_total", "image_count_uploading")
POST_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"name": "bench", "disk_format": "raw", "container_format": "bare"}'
wrk.headers["Content-Type"] = "application/json"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def drop_postgres(server: str, names: list[str]) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def fresh_postgres(server: str, name: str) -> str:
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


class Server:
    def __init__(self, data_dir: Path, database_url: str, enforce: bool, code: Path = NEW) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        log = data_dir.parent / f"{data_dir.name}.log"
        env = {
            **os.environ,
            "SPYGLASS_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SPYGLASS_QUOTA_ENFORCEMENT": "true" if enforce else "false",
            "PYTHONPATH": str(code),
        }
        if database_url:
            env["SPYGLASS_DATABASE_URL"] = database_url
        command = [sys.executable, "-c", LAUNCH, "--data-dir", str(data_dir), "serve"]
        command += ["--port", str(self.port), "--workers", "1", "--demo"]
        self.process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"spyglass serve did not start:\n{log.read_text()}")

    def token(self, cloud: str) -> str:
        clouds = yaml.safe_load((self.data_dir / "clouds.yaml").read_text())
        return token_for(self.url, clouds, cloud)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


def register_limits(server: Server) -> None:
    admin = httpx.Client(base_url=server.url, headers={"X-Auth-Token": server.token("spyglass-admin")})
    service = admin.get("/identity/v3/services", params={"type": "image"}).json()["services"][0]["id"]
    entries = [{"service_id": service, "resource_name": r, "default_limit": 10**9} for r in RESOURCES]
    admin.post("/identity/v3/registered_limits", json={"registered_limits": entries}).raise_for_status()


def creates_per_second(server: Server, token: str, seconds: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(POST_SCRIPT)
    command = ["wrk", "-t1", "-c8", f"-d{seconds}s", "-s", script.name, "-H", f"X-Auth-Token: {token}"]
    out = subprocess.run([*command, f"{server.url}/v2/images"], capture_output=True, text=True).stdout
    os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found, out
    return float(found.group(1))


def _chunks(data: bytes, size: int = 1024 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def upload_mib_per_second(server: Server, token: str, uploads: int, size_mib: int) -> float:
    client = httpx.Client(base_url=server.url, headers={"X-Auth-Token": token}, timeout=600)
    data = os.urandom(size_mib * 1024 * 1024)
    elapsed = 0.0
    for n in range(uploads):
        image = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
        body = data if n % 2 == 0 else _chunks(data)
        started = time.perf_counter()
        response = client.put(
            f"/v2/images/{image['id']}/file",
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        elapsed += time.perf_counter() - started
        response.raise_for_status()
        client.delete(f"/v2/images/{image['id']}")
    return uploads * size_mib / elapsed


def measure(
    work: Path, database: str, enforce: bool, args: argparse.Namespace, label: str, code: Path = NEW
) -> tuple[float, float]:
    server = Server(work / label, database, enforce, code)
    try:
        register_limits(server)
        token = server.token("spyglass-a")
        creates_per_second(server, token, 2)  # warm-up
        creates = creates_per_second(server, token, args.seconds)
        upload = upload_mib_per_second(server, token, args.uploads, args.size_mib)
    finally:
        server.stop()
    return creates, upload


@contextmanager
def limited_database(database: str) -> Iterator[Any]:
    """A migrated database (`database`, or a new SQLite file) with all four limits registered, high
    enough never to refuse; disposed of after."""
    from spyglass.context import RequestContext
    from spyglass.db.engine import Database
    from spyglass.db.migrate import upgrade
    from spyglass.identity import limits
    from spyglass.identity.services import IMAGE
    from spyglass.images.quota_queries import RESOURCES as NAMES

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(database or f"sqlite:///{tmp}/bench.db")
        upgrade(db)
        admin = RequestContext("admin", "admin", frozenset({"admin", "member", "reader"}))
        entries = [{"service_id": IMAGE.id, "resource_name": r, "default_limit": 10**9} for r in NAMES]
        limits.create_registered_limits(db, admin, "RegionOne", {"registered_limits": entries})
        try:
            yield db
        finally:
            db.dispose()


def in_process_create_ms(
    database: str, batches: int = 40, batch: int = 25
) -> tuple[float, float, float, float]:
    """Milliseconds per `create_image` call, quotas on vs off, in interleaved batches in one process
    (over one database, with limits registered): the service's own cost, without HTTP and with
    machine drift spread over both; the median of the on/off ratios of neighbouring batches, which a
    burst of load elsewhere on the machine moves least; and the on/off ratio of this process's CPU
    time (the service's Python and, on SQLite, the database engine; not PostgreSQL's server)."""
    from spyglass.context import RequestContext
    from spyglass.images import catalog, quotas

    with limited_database(database) as db:
        ctx = RequestContext("bench", "bench-project", frozenset({"member"}))
        body = {"disk_format": "raw", "container_format": "bare"}
        spent = {True: 0.0, False: 0.0}
        cpu = {True: 0.0, False: 0.0}
        ratios = []
        for n in range(batches):
            took = {}
            for enforce in (True, False) if n % 2 == 0 else (False, True):
                rules = quotas.ENFORCED if enforce else quotas.OFF
                started, cpu_started = time.perf_counter(), time.process_time()
                for _ in range(batch):
                    catalog.create_image(db, ctx, body, rules)
                took[enforce] = time.perf_counter() - started
                cpu[enforce] += time.process_time() - cpu_started
                spent[enforce] += took[enforce]
            ratios.append(took[True] / took[False])
    calls = batches * batch
    on, off = 1000 * spent[True] / calls, 1000 * spent[False] / calls
    return on, off, statistics.median(ratios), cpu[True] / cpu[False]


def statements_per_create(database: str) -> tuple[int, int]:
    """SQL statements one `create_image` sends, quotas on vs off (limits registered), counted with an
    SQLAlchemy event hook: each is a round trip to the database server."""
    from sqlalchemy import event

    from spyglass.context import RequestContext
    from spyglass.images import catalog, quotas

    with limited_database(database) as db:
        ctx = RequestContext("bench", "bench-project", frozenset({"member"}))
        sent: list[str] = []
        event.listen(db.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
        counts = []
        for rules in (quotas.ENFORCED, quotas.OFF):
            catalog.create_image(db, ctx, {}, rules)
            sent.clear()
            catalog.create_image(db, ctx, {}, rules)
            counts.append(len(sent))
    return counts[0], counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--uploads", type=int, default=6)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--old", default="", help="also measure this git revision (quotas on and off)")
    args = parser.parse_args()
    ensure_wrk()
    made: list[str] = []
    try:
        run(args, made)
    finally:
        if args.postgres:
            drop_postgres(args.postgres, made)


def run(args: argparse.Namespace, made: list[str]) -> None:
    made.append("bench_quotas_statements")
    database = fresh_postgres(args.postgres, made[-1]) if args.postgres else ""
    on, off = statements_per_create(database)
    print(f"statements per create_image: {on} on, {off} off", flush=True)
    made.append("bench_quotas_in_process")
    database = fresh_postgres(args.postgres, made[-1]) if args.postgres else ""
    on_ms, off_ms, median, cpu = in_process_create_ms(database)
    print(
        f"in process: create_image {on_ms:.2f} ms on, {off_ms:.2f} ms off = {on_ms / off_ms:.3f}"
        f" (median of batch pairs {median:.3f}; CPU time of this process {cpu:.3f})",
        flush=True,
    )
    # (tree, quotas on): the new tree, and with --old the old one, which shows what the new code
    # costs when quotas are off (the triggers keeping the image counts run either way).
    runs = [("new", True), ("new", False)] + ([("old", True), ("old", False)] if args.old else [])
    results: dict[tuple[str, bool], list[tuple[float, float]]] = {run: [] for run in runs}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trees = {"new": NEW}
        if args.old:
            trees["old"] = old_tree(args.old, work)
        try:
            for round_ in range(args.rounds):
                for tree, enforce in runs if round_ % 2 == 0 else runs[::-1]:
                    label = f"{tree}-{'on' if enforce else 'off'}-{round_}"
                    made.append(f"bench_quotas_{label.replace('-', '_')}")
                    database = fresh_postgres(args.postgres, made[-1]) if args.postgres else ""
                    creates, upload = measure(work, database, enforce, args, label, trees[tree])
                    results[(tree, enforce)].append((creates, upload))
                    state = "on " if enforce else "off"
                    print(
                        f"round {round_} {tree} quotas {state}: {creates:8.1f} creates/s {upload:8.1f} MiB/s",
                        flush=True,
                    )
        finally:
            if args.old:
                subprocess.run(["git", "worktree", "remove", "--force", str(trees["old"])], cwd=NEW)
    best = {k: (max(c for c, _ in v), max(u for _, u in v)) for k, v in results.items()}
    backend = "PostgreSQL" if args.postgres else "SQLite"
    for index, what in ((0, "POST /v2/images req/s"), (1, "upload MiB/s")):
        on, off = best[("new", True)][index], best[("new", False)][index]
        print(f"{backend}: {what:22} on/off = {on:.1f}/{off:.1f} = {on / off:.3f}")
        if args.old:
            old_off = best[("old", False)][index]
            print(f"{backend}: {what:22} off new/old = {off:.1f}/{old_off:.1f} = {off / old_off:.3f}")
            old_on = best[("old", True)][index]
            print(f"{backend}: {what:22} on new/old = {on:.1f}/{old_on:.1f} = {on / old_on:.3f}")


if __name__ == "__main__":
    main()
