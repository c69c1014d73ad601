"""How fast are the dashboard's pages with a large catalogue? Prints latencies, not assertions.

Fills a metadata store as bench/list_scaling.py does (default 100,000 images over 10,000 projects,
50,000 memberships), logs in to the dashboard as a member project, and times each page through the
real application (in-process ASGI, no network): the four image lists, a page reached by its marker
deep in the catalogue, a search by name, an image page, the invitations inbox. The baseline, in the
same run, is the image API's own default list (`GET /v2/images`) for the same caller.

    .venv/bin/python bench/dashboard_pages.py [--images 100000] [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from list_scaling import PASSWORD, database_url, fill, measure

from spyglass.api.app import create_app
from spyglass.blobs import MemoryStore
from spyglass.db.engine import Database
from spyglass.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url(args, Path(tmp), "dashboard")
        db = Database(url)
        caller_project, _ = fill(db, args.images, args.projects, args.members)
        db.refresh_statistics()
        settings = Settings(data_dir=Path(tmp), database_url=url, validate_member_ids=False)
        app = create_app(settings, db=db, store=MemoryStore())
        with TestClient(app, follow_redirects=False) as client:
            login_page = client.get("/dashboard/login").text
            csrf = re.findall(r'name="csrf_token" value="([0-9a-f]+)"', login_page)[0]
            form = {"username": "bencher", "password": PASSWORD, "domain": "bench", "project": "p0"}
            assert client.post("/dashboard/login", data={**form, "csrf_token": csrf}).status_code == 303
            user = {"name": "bencher", "domain": {"name": "bench"}, "password": PASSWORD}
            identity = {"methods": ["password"], "password": {"user": user}}
            auth = {"auth": {"identity": identity, "scope": {"project": {"id": caller_project}}}}
            token = client.post("/identity/v3/auth/tokens", json=auth).headers["X-Subject-Token"]
            backend = "PostgreSQL" if args.postgres else "SQLite"
            print(f"{args.images:,} images, {backend}, {args.repeat} requests each")
            for name, (p50, p99) in pages(client, token, args.repeat).items():
                print(f"  {name:<34} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
        db.dispose()


def pages(client: TestClient, token: str, repeat: int) -> dict[str, tuple[float, float]]:
    def ok(path: str, **headers: str) -> Callable[[], object]:
        def call() -> None:
            answer = client.get(path, headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: {answer.status_code}")

        return call

    community = client.get("/dashboard/images?view=community").text
    deep = re.findall(r'href="/dashboard/images(\?[^"]+)" rel="next"', community)[0].replace("&amp;", "&")
    some_image = re.findall(r'href="/dashboard/images/([0-9a-f-]{36})"', community)[0]
    calls = {
        "API GET /v2/images (baseline)": ok("/v2/images", **{"X-Auth-Token": token}),
        "dashboard: my images": ok("/dashboard/images?view=mine"),
        "dashboard: shared with me": ok("/dashboard/images?view=shared"),
        "dashboard: community": ok("/dashboard/images?view=community"),
        "dashboard: public": ok("/dashboard/images?view=public"),
        "dashboard: community, 2nd page": ok("/dashboard/images" + deep),
        "dashboard: search by name": ok("/dashboard/images?view=public&name=img-99999"),
        "dashboard: an image page": ok(f"/dashboard/images/{some_image}"),
        "dashboard: invitations": ok("/dashboard/invitations"),
    }
    return {name: measure(call, repeat) for name, call in calls.items()}


if __name__ == "__main__":
    main()
