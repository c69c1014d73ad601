"""Usage tracking: downloads aggregated per image and consumer project (spyglass.sharing.usage)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from spyglass.db.engine import Database
from spyglass.db.tables import image_usage
from spyglass.sharing import usage
from tests.api.helpers import active, create
from tests.api.safety import download, share
from tests.conftest import Callers, World

DATA = b"shared image bytes"


def _rows(caller: object, image_id: str) -> dict[str, dict[str, object]]:
    response = caller.get(f"/v2/images/{image_id}/usage")  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    return {row["project_id"]: row for row in response.json()["usage"]}


def test_downloads_are_counted_per_consumer_project(api: Callers, world: World) -> None:
    beta, gamma = world.projects["beta"], world.projects["gamma"]
    image_id = share(api.alice, beta, api.bob)
    assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": gamma}).status_code == 200
    assert download(api.bob, image_id) == DATA
    assert download(api.bob, image_id) == DATA
    download(api.carol, image_id)

    rows = _rows(api.alice, image_id)
    assert set(rows) == {beta, gamma}
    assert (rows[beta]["downloads"], rows[beta]["bytes"]) == (2, 2 * len(DATA))
    assert rows[beta]["first_download_at"] <= rows[beta]["last_download_at"]  # type: ignore[operator]
    assert (rows[gamma]["downloads"], rows[gamma]["bytes"]) == (1, len(DATA))


def test_a_range_request_counts_the_bytes_of_its_range(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    assert download(api.bob, image_id, headers={"Range": "bytes=0-3"}) == DATA[:4]
    assert _rows(api.alice, image_id)[world.projects["beta"]]["bytes"] == 4


def test_who_reads_which_usage(api: Callers, world: World) -> None:
    beta, alpha = world.projects["beta"], world.projects["alpha"]
    image_id = share(api.alice, beta, api.bob)
    download(api.bob, image_id)
    download(api.alice, image_id)  # the owner's own downloads are counted too

    assert set(_rows(api.alice, image_id)) == {alpha, beta}
    assert set(_rows(api.rita, image_id)) == {alpha, beta}
    assert set(_rows(api.admin, image_id)) == {alpha, beta}
    assert set(_rows(api.bob, image_id)) == {beta}
    assert api.carol.get(f"/v2/images/{image_id}/usage").status_code == 404
    assert api.anonymous.get(f"/v2/images/{image_id}/usage").status_code == 401
    public = active(api.admin, visibility="public")["id"]
    assert _rows(api.carol, public) == {}


def test_no_data_no_usage(api: Callers) -> None:
    image_id = create(api.alice)["id"]
    assert api.alice.get(f"/v2/images/{image_id}/file").status_code == 204
    assert _rows(api.alice, image_id) == {}


def test_deleting_the_image_drops_its_usage(api: Callers, db: Database, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    download(api.bob, image_id)
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    with db.read() as conn:
        assert conn.execute(select(image_usage).where(image_usage.c.image_id == image_id)).all() == []


def test_the_upsert_aggregates_concurrent_style_repeats(api: Callers, db: Database, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"])
    for _ in range(5):
        usage.record(db, "p1", image_id, 7)
    with db.read() as conn:
        row = conn.execute(select(image_usage).where(image_usage.c.project_id == "p1")).mappings().one()
    assert (row["downloads"], row["bytes"]) == (5, 35)
    assert isinstance(row["first_download_at"], datetime)


def test_a_download_of_an_image_deleted_meanwhile_is_not_an_error(
    api: Callers, world: World, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    image = active(api.alice)
    assert api.alice.delete(f"/v2/images/{image['id']}").status_code == 204
    # The download looked the image up before the delete; it records after.
    with caplog.at_level("DEBUG", logger="spyglass.sharing.usage"):
        usage.record(db, world.projects["alpha"], image["id"], 11)
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
    assert "deleted during its download" in caplog.text
    with db.read() as conn:
        assert conn.execute(select(image_usage).where(image_usage.c.image_id == image["id"])).all() == []
