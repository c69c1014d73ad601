"""What one bulk share call costs: 1,000 (image, member) pairs added, then removed, in one call.

Builds a fresh database (SQLite in a temporary directory, or a fresh PostgreSQL database with
--postgres URL), an owner project with 10 shared images and 100 member projects, and times
`POST /v2/shared-images/bulk` in-process (Starlette TestClient, no network), add then remove,
for a few rounds, atomic and not. Each pair does the work of a single member call: authorization,
validation, quota, impact check, audit event and webhook outbox. Numbers only; nothing is asserted.

    .venv/bin/python bench/bulk_shares.py [--images 10] [--members 100] [--rounds 3]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool
from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spyglass.api.app import create_app  # noqa: E402
from spyglass.blobs import FilesystemStore  # noqa: E402
from spyglass.db.engine import Database  # noqa: E402
from spyglass.db.migrate import upgrade  # noqa: E402
from spyglass.identity import bootstrap as bs  # noqa: E402
from spyglass.identity.tokens import issue_token  # noqa: E402
from spyglass.settings import Settings  # noqa: E402

PASSWORD = "bench-password"
PG_NAME = "spyglass_bench_bulk"


def database_url(data_dir: Path, postgres: str) -> str:
    if not postgres:
        return f"sqlite:///{data_dir / 'spyglass.db'}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{PG_NAME}"')
    admin.dispose()
    return make_url(postgres).set(database=PG_NAME).render_as_string(hide_password=False)


def populate(db: Database, members: int) -> tuple[str, list[str]]:
    """The owner's token and the member project ids."""
    upgrade(db)
    bs.bootstrap(db, admin_password=PASSWORD)
    with db.write() as conn:
        roles = bs.ensure_roles(conn)
        owner = bs.ensure_project(conn, "owner", bs.DEFAULT_DOMAIN_ID)
        bs.ensure_user(conn, "olga", bs.DEFAULT_DOMAIN_ID, owner, roles["member"], PASSWORD)
        projects = [bs.ensure_project(conn, f"consumer-{n}", bs.DEFAULT_DOMAIN_ID) for n in range(members)]
    auth = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "olga", "domain": {"id": "default"}, "password": PASSWORD}},
            },
            "scope": {"project": {"name": "owner", "domain": {"id": "default"}}},
        }
    }
    token, _ = issue_token(db, auth, 86400)
    return token, projects


def timed(client: TestClient, token: str, body: dict[str, Any]) -> float:
    start = time.perf_counter()
    response = client.post("/v2/shared-images/bulk", json=body, headers={"X-Auth-Token": token})
    elapsed = time.perf_counter() - start
    results = response.json()["results"]
    failed = [r for r in results if r["error"]]
    if response.status_code != 200 or failed:
        raise SystemExit(f"bulk call failed: {response.status_code} {failed[:3]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = database_url(data_dir, args.postgres)
        db = Database(url)
        token, projects = populate(db, args.members)
        settings = Settings(
            data_dir=data_dir, database_url=url, webhook_poll_seconds=0, image_member_quota=10_000
        )
        app = create_app(settings, db=db, store=FilesystemStore(settings.blob_dir))
        with TestClient(app, base_url="http://127.0.0.1:9292") as client:
            headers = {"X-Auth-Token": token}
            images = [
                client.post(
                    "/v2/images",
                    json={
                        "name": f"i{n}",
                        "visibility": "shared",
                        "disk_format": "raw",
                        "container_format": "bare",
                    },
                    headers=headers,
                ).json()["id"]
                for n in range(args.images)
            ]
            pairs = len(images) * len(projects)
            backend = "PostgreSQL" if args.postgres else "SQLite"
            print(f"{backend}: {pairs} pairs per call ({len(images)} images x {len(projects)} members)")
            for atomic in (False, True):
                adds, removes = [], []
                for _ in range(args.rounds):
                    body = {"images": images, "members": projects, "atomic": atomic}
                    adds.append(timed(client, token, {"action": "add", **body}))
                    removes.append(timed(client, token, {"action": "remove", **body}))
                print(
                    f"  atomic={str(atomic).lower():5}  add: best {min(adds):.3f} s, median "
                    f"{statistics.median(adds):.3f} s ({pairs / min(adds):,.0f} pairs/s)   remove: best "
                    f"{min(removes):.3f} s, median {statistics.median(removes):.3f} s"
                )
        db.dispose()


if __name__ == "__main__":
    main()
