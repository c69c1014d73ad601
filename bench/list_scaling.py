"""Does listing cost grow with the page or with the catalogue? Prints latencies, not assertions.

Fills a metadata store with a small and a large catalogue (default 1,000 and 100,000 images over
10,000 projects with 50,000 memberships), then times, as a non-admin project, the default list,
`?visibility=shared&member_status=all`, `?member_status=pending`, show, and add+remove member,
through the real application (in-process ASGI, no network), and prints p50/p99 and the
large/small ratio. Run on SQLite (default) or PostgreSQL:

    .venv/bin/python bench/list_scaling.py [--large 100000] [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, make_url
from sqlalchemy.pool import NullPool
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import MemoryStore
from spyglass.db.engine import Database
from spyglass.db.migrate import upgrade
from spyglass.db.tables import domains, image_members, images, projects
from spyglass.identity import bootstrap as bs
from spyglass.identity.tokens import issue_token
from spyglass.settings import Settings

PASSWORD = "bench-password"
VISIBILITY_WEIGHTS = (("private", 40), ("shared", 45), ("community", 10), ("public", 5))


def fill(db: Database, n_images: int, n_projects: int, n_members: int, seed: int = 7) -> tuple[str, str]:
    """Bulk-insert the catalogue; returns (project id of the measured caller, one shared image id)."""
    rng = random.Random(seed)
    upgrade(db)
    bs.bootstrap(db, admin_password=PASSWORD)
    project_ids = [uuid.uuid4().hex for _ in range(n_projects)]
    with db.write() as conn:
        conn.execute(insert(domains).values(id="benchdomain", name="bench", description="", enabled=True))
        conn.execute(
            insert(projects),
            [
                {"id": p, "name": f"p{i}", "domain_id": "benchdomain", "description": "", "enabled": True}
                for i, p in enumerate(project_ids)
            ],
        )
        role_ids = bs.ensure_roles(conn)
        caller_project = project_ids[0]
        bs.ensure_user(conn, "bencher", "benchdomain", caller_project, role_ids["member"], PASSWORD)
    names, weights = zip(*VISIBILITY_WEIGHTS, strict=True)
    start = datetime(2025, 1, 1)
    rows, shared_ids = [], []
    for i in range(n_images):
        visibility = rng.choices(names, weights)[0]
        image_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        when = start + timedelta(seconds=i * 37)
        rows.append(
            {
                "id": image_id,
                "name": f"img-{i}",
                "owner": rng.choice(project_ids),
                "status": "active",
                "visibility": visibility,
                "disk_format": "raw",
                "container_format": "bare",
                "size": 1024,
                "virtual_size": 1024,
                "checksum": "0" * 32,
                "os_hash_algo": "sha512",
                "os_hash_value": "0" * 128,
                "min_disk": 0,
                "min_ram": 0,
                "protected": False,
                "os_hidden": False,
                "blob_key": None,
                "created_at": when,
                "updated_at": when,
            }
        )
        if visibility == "shared":
            shared_ids.append(image_id)
    with db.write() as conn:
        for chunk in range(0, len(rows), 5000):
            conn.execute(insert(images), rows[chunk : chunk + 5000])
    members: set[tuple[str, str]] = set()
    statuses = ("pending", "accepted", "rejected")
    # The caller is a member of a handful of images in each status, like any other project.
    for image_id in rng.sample(shared_ids, min(15, len(shared_ids))):
        members.add((image_id, caller_project))
    while len(members) < min(n_members, len(shared_ids) * 5):
        members.add((rng.choice(shared_ids), rng.choice(project_ids)))
    now = datetime(2026, 1, 1)
    member_rows = [
        {
            "image_id": i,
            "member_id": m,
            "status": statuses[hash((i, m)) % 3],
            "created_at": now,
            "updated_at": now,
        }
        for i, m in members
    ]
    with db.write() as conn:
        for chunk in range(0, len(member_rows), 5000):
            conn.execute(insert(image_members), member_rows[chunk : chunk + 5000])
    own_shared = rows[0]["id"]
    return caller_project, own_shared


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    for _ in range(5):
        call()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), percentile(samples, 0.99)


def run_one(
    url: str, data_dir: Path, n_images: int, args: argparse.Namespace
) -> dict[str, tuple[float, float]]:
    db = Database(url)
    caller_project, _ = fill(db, n_images, args.projects, args.members)
    # As `spyglass serve` does at start-up and every ten minutes.
    db.refresh_statistics()
    auth = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "bencher", "domain": {"id": "benchdomain"}, "password": PASSWORD}
                },
            },
            "scope": {"project": {"id": caller_project}},
        }
    }
    token, _ = issue_token(db, auth, 86400)
    settings = Settings(data_dir=data_dir, database_url=url, validate_member_ids=False)
    app = create_app(settings, db=db, store=MemoryStore())
    results = {}
    headers = {"X-Auth-Token": token}
    with TestClient(app) as client:
        own = client.post("/v2/images", json={"name": "mine"}, headers=headers).json()["id"]
        target = uuid.uuid4().hex

        def check(response: object) -> None:
            status = getattr(response, "status_code", 0)
            if status >= 300:
                raise RuntimeError(f"unexpected status {status}")

        calls: dict[str, Callable[[], object]] = {
            "list default": lambda: check(client.get("/v2/images", headers=headers)),
            "list shared, all statuses": lambda: check(
                client.get("/v2/images?visibility=shared&member_status=all", headers=headers)
            ),
            "list pending": lambda: check(client.get("/v2/images?member_status=pending", headers=headers)),
            "show": lambda: check(client.get(f"/v2/images/{own}", headers=headers)),
            "add+remove member": lambda: (
                check(client.post(f"/v2/images/{own}/members", json={"member": target}, headers=headers)),
                check(client.delete(f"/v2/images/{own}/members/{target}", headers=headers)),
            ),
        }
        for name, call in calls.items():
            results[name] = measure(call, args.repeat)
    db.dispose()
    return results


def database_url(args: argparse.Namespace, tmp: Path, label: str) -> str:
    if not args.postgres:
        return f"sqlite:///{tmp / label}.db"
    name = f"spyglass_bench_{label}"
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(args.postgres).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--postgres", default="", help="server URL; default is SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        small = run_one(database_url(args, tmp, "small"), tmp, args.small, args)
        large = run_one(database_url(args, tmp, "large"), tmp, args.large, args)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{backend}: {args.small:,} vs {args.large:,} images, "
        f"{args.projects:,} projects, {args.members:,} memberships"
    )
    print(
        f"{'call':28} {'p50 small':>10} {'p50 large':>10} "
        f"{'p99 small':>10} {'p99 large':>10} {'p50 ratio':>10}"
    )
    for name in small:
        (s50, s99), (l50, l99) = small[name], large[name]
        print(f"{name:28} {s50:9.2f}ms {l50:9.2f}ms {s99:9.2f}ms {l99:9.2f}ms {l50 / s50:9.2f}x")


if __name__ == "__main__":
    main()
