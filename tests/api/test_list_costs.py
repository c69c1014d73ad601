"""What an image list costs the database: one statement for a page, whatever its size, once the
caller's token is remembered; a marker adds its own lookup in one short transaction."""

from __future__ import annotations

from spyglass.db.engine import Database
from tests.api.helpers import create
from tests.api.test_authentication import Statements
from tests.conftest import Caller, Callers, World

# The token (first request only) and the page.
MOST_STATEMENTS = 2


def _page(caller: Caller, db: Database, url: str) -> tuple[dict[str, dict[str, object]], list[str]]:
    with Statements(db.engine) as request:
        response = caller.get(url)
    assert response.status_code == 200, response.text
    listed = {image["id"]: image for image in response.json()["images"]}
    # A read of the identity generation comes when the last one is more than 0.5 s old, as it may
    # be on a slow machine: it is the token cache's, not the list's.
    return listed, [s for s in request.seen if "identity_generation" not in s]


def test_an_authenticated_image_list_runs_one_statement_whatever_the_page_size(
    api: Callers, db: Database, world: World
) -> None:
    beta = world.projects["beta"]
    made = [
        create(api.alice, name=f"own-{i}", visibility="shared", tags=["a", f"t{i}"], os_distro="debian")["id"]
        for i in range(6)
    ]
    for image_id in made[:4]:
        assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": beta}).status_code == 200
        accepted = api.bob.put(f"/v2/images/{image_id}/members/{beta}", json={"status": "accepted"})
        assert accepted.status_code == 200
    public = create(api.bob, name="bob-community", visibility="community", hw_disk_bus="scsi")["id"]
    listing = "/v2/images?visibility=all"
    for caller, expected in ((api.alice, {*made, public}), (api.bob, {*made[:4], public})):
        for _ in range(3):
            listed, seen = _page(caller, db, listing)
            assert set(listed) == expected
            assert len(seen) <= MOST_STATEMENTS, seen
        # Remembered: the page of every image with its tags and properties is one statement, as
        # is a page of two.
        for url, size in ((f"{listing}&limit=1000", len(expected)), (f"{listing}&limit=2", 2)):
            listed, seen = _page(caller, db, url)
            assert len(listed) == size
            assert len(seen) == 1, seen
        listed, _ = _page(caller, db, listing)
        assert listed[made[0]]["tags"] == ["a", "t0"] and listed[made[0]]["os_distro"] == "debian"
        assert listed[public]["hw_disk_bus"] == "scsi" and listed[public]["tags"] == []


def test_a_list_after_a_marker_reads_the_marker_and_the_page(api: Callers, db: Database) -> None:
    made = [create(api.alice, name=f"m-{i}")["id"] for i in range(3)]
    api.alice.get("/v2/images")  # the token, remembered
    listed, seen = _page(api.alice, db, f"/v2/images?sort=name:asc&marker={made[0]}")
    assert list(listed) == made[1:]
    # The marker and the page, in one transaction (SQLite's BEGIN is a statement of its own).
    assert len([s for s in seen if s != "BEGIN"]) == 2, seen
