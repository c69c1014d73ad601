"""Small requests, old code against new in the same run: `GET /v2/images/{id}` at 8 and 32
connections, `GET /v2/images` (25 items) at 32, a `?limit=1000` page and a member add + remove pair
one at a time, with server CPU and SQL statements per request (issue 13).

For each code tree (the new one, and `--old REV` checked out in a temporary git worktree, by default
the merge-base with main) and each database (SQLite, and PostgreSQL with `--postgres URL`):
starts `spyglass serve --demo`, makes 1,000 images over 5 projects (a quarter of the other
projects' images shared with the demo project B, which accepts them; B is the caller). Then, with
one worker and then with the default number of workers, both trees' servers run at once and take
turns under wrk (/usr/bin/wrk, installed with apt-get when absent): --rounds runs of --seconds for
each load, old and new alternating (and which goes first), so that drift on a shared machine hits
both; the pairs and pages alternate one by one:

    .venv/bin/python bench/small_requests.py [--old REV] [--postgres URL] [--seconds 4] [--rounds 3]

Prints req/s (mean of the runs), p50/p99 latency (median of the runs), server CPU ms per request
(utime + stime of the server and its worker processes, from /proc, over all runs), PostgreSQL
sessions opened during the runs, and SQL statements per request (counted in-process with an
SQLAlchemy event hook, on the same database), then the new/old ratios. Asserts nothing: the
machine may be shared, compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

NEW = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "bench-admin-password"
IMAGES = 1000
PROJECTS = 5
# Drops the editable install's finder, which would import the new tree whatever PYTHONPATH says.
UNEDITABLE = "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
LAUNCH = UNEDITABLE + "from spyglass.cli import main; sys.exit(main(sys.argv[1:]))"
# Counts the statements of each request in-process, on the served database (argv: data dir,
# database URL or "", token, image URL path, list path, member path, member id).
COUNT = (
    UNEDITABLE
    + """
import json
from sqlalchemy import event
from starlette.testclient import TestClient
from spyglass.api.app import create_app
from spyglass.db.engine import Database
from spyglass.settings import Settings
from pathlib import Path
data_dir, url, token, image, listing, members, member = sys.argv[1:8]
settings = Settings(data_dir=Path(data_dir), database_url=url)
db = Database(settings.database)
seen = []
event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(1))
counts = {}
with TestClient(create_app(settings, db=db)) as client:
    headers = {"X-Auth-Token": token}
    def count(name, method, path, **kw):
        client.request(method, path, headers=headers, **kw).raise_for_status()
        seen.clear()
        for _ in range(10):
            client.request(method, path, headers=headers, **kw).raise_for_status()
        counts[name] = len(seen) / 10
    count("show", "GET", image)
    count("list", "GET", listing)
    client.post(members, headers=headers, json={"member": member}).raise_for_status()
    client.delete(f"{members}/{member}", headers=headers).raise_for_status()
    seen.clear()
    client.post(members, headers=headers, json={"member": member}).raise_for_status()
    client.delete(f"{members}/{member}", headers=headers).raise_for_status()
    counts["member pair"] = len(seen)
print(json.dumps(counts))
"""
)


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_database(server: str, name: str, *, drop_only: bool = False) -> str:
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def postgres_sessions(url: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        name = make_url(url).database
        found = conn.exec_driver_sql(
            "SELECT sessions FROM pg_stat_database WHERE datname = %(name)s", {"name": name}
        ).scalar()
    engine.dispose()
    return int(found or 0)


# ---- the server ---------------------------------------------------------------------------------


class Server:
    def __init__(self, code: Path, data_dir: Path, database_url: str, workers: int | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log = data_dir.parent / f"{data_dir.name}-{workers or 'default'}.log"
        env = {**os.environ, "PYTHONPATH": str(code), "SPYGLASS_ADMIN_PASSWORD": ADMIN_PASSWORD}
        if database_url:
            env["SPYGLASS_DATABASE_URL"] = database_url
        command = [sys.executable, "-c", LAUNCH, "--data-dir", str(data_dir), "serve"]
        command += ["--port", str(self.port), "--demo"]
        command += ["--workers", str(workers)] if workers else []
        self.process = subprocess.Popen(
            command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=data_dir.parent
        )
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise

    def _wait(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"spyglass serve exited early:\n{self.log.read_text()}")
            try:
                httpx.get(self.url + "/versions", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.3)
        raise RuntimeError("spyglass serve did not start")

    def cpu_seconds(self) -> float:
        """utime + stime of the server and every process under it."""
        ticks = os.sysconf("SC_CLK_TCK")
        parents: dict[int, int] = {}
        times: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            times[int(entry.name)] = int(fields[11]) + int(fields[12])
        ours, grown = {self.process.pid}, True
        while grown:
            more = {pid for pid, parent in parents.items() if parent in ours} - ours
            grown = bool(more)
            ours |= more
        return sum(times.get(pid, 0) for pid in ours) / ticks

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def token(url: str, scope: dict[str, Any], user: dict[str, Any]) -> str:
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": scope},
        }
    }
    response = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=60)
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def demo_token(server: Server, cloud: str) -> str:
    auth = yaml.safe_load((server.data_dir / "clouds.yaml").read_text())["clouds"][cloud]["auth"]
    user = {
        "name": auth["username"],
        "domain": {"name": auth["user_domain_name"]},
        "password": auth["password"],
    }
    scope = {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}
    return token(server.url, scope, user)


# ---- the catalogue ------------------------------------------------------------------------------


@dataclass
class Catalogue:
    b_token: str = ""
    a_token: str = ""
    b_project: str = ""
    spare_project: str = ""
    shown: str = ""  # an image of A's, shared with B: what B shows
    own: str = ""  # another image of A's shared with B: A adds and removes another member on it
    projects: list[str] = field(default_factory=list)


def populate(server: Server) -> Catalogue:
    url = server.url
    admin = token(
        url,
        {"name": "admin", "domain": {"id": "default"}},
        {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD},
    )
    as_admin = httpx.Client(base_url=url, headers={"X-Auth-Token": admin}, timeout=60)
    cat = Catalogue(a_token=demo_token(server, "spyglass-a"), b_token=demo_token(server, "spyglass-b"))
    for cloud_token in (cat.a_token, cat.b_token):
        mine = httpx.get(f"{url}/identity/v3/auth/projects", headers={"X-Auth-Token": cloud_token}).json()
        cat.projects.append(mine["projects"][0]["id"])
    cat.b_project = cat.projects[1]
    for n in range(PROJECTS - 2):
        made = as_admin.post(
            "/identity/v3/projects", json={"project": {"name": f"bench-{n}", "domain_id": "default"}}
        )
        made.raise_for_status()
        cat.projects.append(made.json()["project"]["id"])
    cat.spare_project = cat.projects[2]

    def make(i: int) -> tuple[str, str, bool]:
        owner = cat.projects[i % PROJECTS]
        shared = owner != cat.b_project and i % 4 == 1
        body = {
            "name": f"image-{i:04d}",
            "owner": owner,
            "disk_format": "qcow2",
            "container_format": "bare",
            "visibility": "shared" if shared else ("public" if i % 10 == 3 else "private"),
            "os_distro": "debian",
            "os_version": str(i % 13),
            "hw_disk_bus": "virtio",
            "tags": ["bench"],
        }
        response = as_admin.post("/v2/images", json=body)
        response.raise_for_status()
        image_id = response.json()["id"]
        if shared:
            as_admin.post(f"/v2/images/{image_id}/members", json={"member": cat.b_project}).raise_for_status()
            httpx.put(
                f"{url}/v2/images/{image_id}/members/{cat.b_project}",
                json={"status": "accepted"},
                headers={"X-Auth-Token": cat.b_token},
            ).raise_for_status()
        return image_id, owner, shared

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(make, range(IMAGES)))
    shared_by_a = [i for i, owner, shared in made if shared and owner == cat.projects[0]]
    cat.shown, cat.own = shared_by_a[0], shared_by_a[1]
    return cat


# ---- measuring ----------------------------------------------------------------------------------


@dataclass
class Load:
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    sessions: int | None = None
    requests: int = 0
    cpu_seconds: float = 0.0

    @staticmethod
    def combined(runs: list[Load]) -> Load:
        """Several runs of one load: the mean rate, the median p50 and p99, CPU over all requests."""
        requests = sum(r.requests for r in runs)
        cpu = sum(r.cpu_seconds for r in runs)
        sessions = [r.sessions for r in runs if r.sessions is not None]
        return Load(
            statistics.mean(r.rate for r in runs),
            statistics.median(r.p50_ms for r in runs),
            statistics.median(r.p99_ms for r in runs),
            1000 * cpu / requests,
            sum(sessions) if sessions else None,
            requests,
            cpu,
        )


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise ValueError(f"wrk printed a latency I cannot read: {text!r}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}[unit]


def wrk(server: Server, path: str, auth: str, connections: int, seconds: int, database_url: str) -> Load:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"X-Auth-Token: {auth}"]
    sessions = postgres_sessions(database_url) if database_url else None
    cpu = server.cpu_seconds()
    out = subprocess.run([*command, server.url + path], check=True, capture_output=True, text=True).stdout
    cpu = server.cpu_seconds() - cpu
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"    wrk saw errors:\n{out}", flush=True)
    total = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    # The latency distribution's lines (the thread stats also end in percentages).
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    assert total and rate and p50 and p99, out
    opened = postgres_sessions(database_url) - sessions if database_url and sessions is not None else None
    requests = int(total.group(1))
    return Load(
        float(rate.group(1)),
        _ms(p50.group(1)),
        _ms(p99.group(1)),
        1000 * cpu / requests,
        opened,
        requests,
        cpu,
    )


def alternating_ms(calls: dict[str, Callable[[], object]], times: int) -> dict[str, float]:
    """The median time of each call, the calls taking turns (which goes first alternates)."""
    taken: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    for _ in range(times):
        order.reverse()
        for name in order:
            start = time.perf_counter()
            calls[name]()
            taken[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(times) for name, times in taken.items()}


def member_pair(server: Server, cat: Catalogue) -> Callable[[], None]:
    client = httpx.Client(base_url=server.url, headers={"X-Auth-Token": cat.a_token}, timeout=60)
    members = f"/v2/images/{cat.own}/members"

    def pair() -> None:
        client.post(members, json={"member": cat.spare_project}).raise_for_status()
        client.delete(f"{members}/{cat.spare_project}").raise_for_status()

    pair()
    return pair


def big_page(server: Server, cat: Catalogue) -> Callable[[], None]:
    client = httpx.Client(base_url=server.url, headers={"X-Auth-Token": cat.b_token}, timeout=60)
    client.get("/v2/images?limit=1000").raise_for_status()
    return lambda: client.get("/v2/images?limit=1000").raise_for_status()


def statements(code: Path, server: Server, database_url: str, cat: Catalogue) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    argv = [
        str(server.data_dir),
        database_url,
        cat.a_token,
        f"/v2/images/{cat.shown}",
        "/v2/images",
        f"/v2/images/{cat.own}/members",
        cat.spare_project,
    ]
    out = subprocess.run(
        [sys.executable, "-c", COUNT, *argv],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=server.data_dir.parent,
    ).stdout
    counted: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return counted


# What wrk drives: a name, the path (of a tree's catalogue), connections.
LOADS: list[tuple[str, Callable[[Catalogue], str], int]] = [
    ("show c8", lambda cat: f"/v2/images/{cat.shown}", 8),
    ("show c32", lambda cat: f"/v2/images/{cat.shown}", 32),
    ("list c32", lambda cat: "/v2/images", 32),
]


@dataclass
class Tree:
    """One code tree on one database: where its data is, and what populate made there."""

    name: str
    code: Path
    data_dir: Path
    database_url: str
    cat: Catalogue = field(default_factory=Catalogue)


def interleaved(
    trees: list[Tree], workers: int | None, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Every load on every tree's server, all up at once, the trees taking turns (--rounds runs of
    --seconds each): drift on a shared machine hits old and new alike."""
    servers: dict[str, Server] = {}
    try:
        for tree in trees:
            servers[tree.name] = Server(tree.code, tree.data_dir, tree.database_url, workers=workers)
        for tree in trees:
            wrk(servers[tree.name], f"/v2/images/{tree.cat.shown}", tree.cat.b_token, 8, 2, "")  # warm-up
        figures: dict[str, dict[str, Any]] = {tree.name: {} for tree in trees}
        for what, path, connections in LOADS:
            runs: dict[str, list[Load]] = {tree.name: [] for tree in trees}
            order = list(trees)
            for _ in range(args.rounds):
                order.reverse()
                for tree in order:
                    server, cat = servers[tree.name], tree.cat
                    runs[tree.name].append(
                        wrk(server, path(cat), cat.b_token, connections, args.seconds, tree.database_url)
                    )
            for name, done in runs.items():
                figures[name][what] = Load.combined(done)
        pairs = alternating_ms({t.name: member_pair(servers[t.name], t.cat) for t in trees}, 100)
        pages = alternating_ms({t.name: big_page(servers[t.name], t.cat) for t in trees}, 10)
        for name in figures:
            figures[name]["member pair p50 ms"] = pairs[name]
            figures[name]["limit=1000 p50 ms"] = pages[name]
        return figures
    finally:
        for server in servers.values():
            server.stop()


def report(backend: str, name: str, label: str, figures: dict[str, Any]) -> None:
    for what, load in figures.items():
        if not isinstance(load, Load):
            continue
        sessions = f", {load.sessions} PG sessions opened" if load.sessions is not None else ""
        print(
            f"  {backend:10} {name:3} {label:10} {what:9}: {load.rate:7.0f} req/s"
            f"  p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms"
            f"  cpu {load.cpu_ms:5.2f} ms/req{sessions}",
            flush=True,
        )
    print(
        f"  {backend:10} {name:3} {label:10} member add+remove p50"
        f" {figures['member pair p50 ms']:.2f} ms,"
        f" limit=1000 page p50 {figures['limit=1000 p50 ms']:.1f} ms",
        flush=True,
    )


def run_backend(backend: str, codes: dict[str, Path], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    trees = [
        Tree(
            name,
            code,
            work / f"{backend}-{name}",
            postgres_database(args.postgres, f"bench_small_{name}") if backend == "postgresql" else "",
        )
        for name, code in codes.items()
    ]
    results: dict[str, dict[str, Any]] = {tree.name: {} for tree in trees}
    for tree in trees:
        server = Server(tree.code, tree.data_dir, tree.database_url, workers=1)
        try:
            started = time.monotonic()
            tree.cat = populate(server)
            print(f"  {backend} {tree.name}: populated in {time.monotonic() - started:.0f} s", flush=True)
        finally:
            server.stop()
    for workers in (1, None):
        label = f"{workers or 'default'} worker{'s' if workers != 1 else ''}"
        for name, figures in interleaved(trees, workers, args).items():
            results[name][label] = figures
            report(backend, name, label, figures)
    for tree in trees:
        server = Server(tree.code, tree.data_dir, tree.database_url, workers=1)
        try:
            results[tree.name]["statements"] = statements(tree.code, server, tree.database_url, tree.cat)
        finally:
            server.stop()
        print(
            f"  {backend:10} {tree.name:3} SQL statements per request: {results[tree.name]['statements']}",
            flush=True,
        )
        if tree.database_url:
            postgres_database(args.postgres, f"bench_small_{tree.name}", drop_only=True)
    return results


def compare(backend: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    print(f"{backend}: new/old", flush=True)
    for label in new:
        if label == "statements":
            print(f"  statements per request: old {old[label]}  new {new[label]}")
            continue
        for what, load in new[label].items():
            before = old[label][what]
            if isinstance(load, Load):
                print(
                    f"  {label:10} {what:9}: req/s x{load.rate / before.rate:.2f},"
                    f" cpu/req x{load.cpu_ms / before.cpu_ms:.2f},"
                    f" p99 {before.p99_ms:.1f} -> {load.p99_ms:.1f} ms"
                )
            else:
                print(f"  {label:10} {what}: {before:.2f} -> {load:.2f}")


def old_tree(rev: str, work: Path) -> Path:
    if not rev:
        rev = subprocess.run(
            ["git", "merge-base", "HEAD", "main"], cwd=NEW, check=True, capture_output=True, text=True
        ).stdout.strip()
    path = work / "old-tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), rev], cwd=NEW, check=True, capture_output=True
    )
    print(f"old: {rev} in {path}", flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--old", default="", help="git revision of the old code (default: merge-base with main)"
    )
    parser.add_argument("--postgres", default="", help="PostgreSQL server URL; also measure there")
    parser.add_argument("--seconds", type=int, default=4, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs of each load on each tree")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    ensure_wrk()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-small-"))
    old = old_tree(args.old, work)
    try:
        backends = [*(["sqlite"] if args.sqlite else []), *(["postgresql"] if args.postgres else [])]
        for backend in backends:
            measured = run_backend(backend, {"old": old, "new": NEW}, args, work)
            compare(backend, measured["old"], measured["new"])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=NEW, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
