"""Shares that end on a date: setting the expiry, the warning ahead, the end, on one node or two."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from spyglass.db.engine import Database
from spyglass.db.tables import image_events
from spyglass.settings import Settings
from spyglass.sharing import expiry
from spyglass.timeutil import isotime, utcnow
from tests.api.helpers import active
from tests.api.safety import callers_with, event_types, share
from tests.conftest import Callers, World

CALLERS = ("alice", "rita", "bob", "carol", "admin", "anonymous")
LATER = "2099-01-31T00:00:00Z"


def _at(delta: timedelta) -> str:
    text = isotime(utcnow() + delta)
    assert text is not None
    return text


def _expiry_url(image_id: str, member: str) -> str:
    return f"/v2/images/{image_id}/members/{member}/expiry"


def _shared_with_beta(api: Callers, world: World, expires_at: str | None = None) -> str:
    image_id: str = active(api.alice, b"exp", visibility="shared")["id"]
    body: dict[str, Any] = {"member": world.projects["beta"]}
    if expires_at is not None:
        body["expires_at"] = expires_at
    added = api.alice.post(f"/v2/images/{image_id}/members", json=body)
    assert added.status_code == 200, added.text
    return image_id


def _events(db: Database, image_id: str, kind: str) -> int:
    with db.read() as conn:
        stmt = select(image_events.c.id).where(
            image_events.c.image_id == image_id, image_events.c.event_type == kind
        )
        return len(conn.execute(stmt).all())


def test_expiry_is_set_shown_and_cleared(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = _shared_with_beta(api, world, LATER)
    row = api.alice.get(f"/v2/images/{image_id}/members/{beta}").json()
    assert row["expires_at"] == LATER
    assert api.bob.get(f"/v2/images/{image_id}/members").json()["members"][0]["expires_at"] == LATER
    cleared = api.alice.put(_expiry_url(image_id, beta), json={"expires_at": None})
    assert cleared.status_code == 200 and "expires_at" not in cleared.json()
    # Without an expiry, the member row is exactly Glance's.
    assert "expires_at" not in api.alice.get(f"/v2/images/{image_id}/members/{beta}").json()
    again = api.alice.put(_expiry_url(image_id, beta), json={"expires_at": "2098-05-01T12:00:00+02:00"})
    assert again.json()["expires_at"] == "2098-05-01T10:00:00Z"
    assert event_types(api.alice, image_id).count("member.expiry_changed") == 2


@pytest.mark.parametrize("value", ["2001-01-01T00:00:00Z", "tomorrow", 5, "", "2027-13-01T00:00:00Z"])
def test_past_or_malformed_times_are_400(api: Callers, world: World, value: object) -> None:
    image_id = _shared_with_beta(api, world)
    beta = world.projects["beta"]
    assert api.alice.put(_expiry_url(image_id, beta), json={"expires_at": value}).status_code == 400
    other: dict[str, Any] = {"member": world.projects["gamma"], "expires_at": value}
    assert api.alice.post(f"/v2/images/{image_id}/members", json=other).status_code == 400
    assert {m["member_id"] for m in api.alice.get(f"/v2/images/{image_id}/members").json()["members"]} == {
        beta
    }


def test_authorization_matrix(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    url = _expiry_url(image_id, world.projects["beta"])
    got = tuple(getattr(api, n).put(url, json={"expires_at": LATER}).status_code for n in CALLERS)
    assert got == (200, 403, 403, 404, 200, 401)
    missing = _expiry_url(image_id, world.projects["gamma"])
    assert api.alice.put(missing, json={"expires_at": LATER}).status_code == 404


def test_the_membership_ends_at_its_date_exactly_once(api: Callers, db: Database, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    assert (
        api.alice.put(_expiry_url(image_id, beta), json={"expires_at": _at(timedelta(minutes=5))}).status_code
        == 200
    )
    assert expiry.end_expired(db, utcnow()) == 0
    assert api.bob.get(f"/v2/images/{image_id}").status_code == 200
    later = utcnow() + timedelta(minutes=6)
    assert expiry.end_expired(db, later) == 1
    assert expiry.end_expired(db, later) == 0
    assert api.bob.get(f"/v2/images/{image_id}").status_code == 404
    assert api.alice.get(f"/v2/images/{image_id}/members").json()["members"] == []
    assert event_types(api.alice, image_id)[-1] == "member.expired"
    # The ex-member reads the end of its membership, as for a removal.
    assert "member.expired" in event_types(api.bob, image_id)
    # A member added again has no expiry of the old row.
    api.alice.post(f"/v2/images/{image_id}/members", json={"member": beta})
    assert "expires_at" not in api.alice.get(f"/v2/images/{image_id}/members/{beta}").json()


def test_the_member_is_warned_once_and_its_inbox_says_so(api: Callers, db: Database, world: World) -> None:
    beta = world.projects["beta"]
    when = _at(timedelta(days=10))
    image_id = _shared_with_beta(api, world, when)
    entry = api.bob.get("/v2/shared-images/invitations").json()["invitations"][0]
    assert (entry["expires_at"], entry["expiring"]) == (when, False)
    assert expiry.warn_expiring(db, 7, utcnow()) == 0
    in_four_days = utcnow() + timedelta(days=4)
    assert expiry.warn_expiring(db, 7, in_four_days) == 1
    assert expiry.warn_expiring(db, 7, in_four_days) == 0
    assert _events(db, image_id, "member.expiring") == 1
    # Moving the date warns again, once.
    api.alice.put(_expiry_url(image_id, beta), json={"expires_at": _at(timedelta(days=12))})
    assert expiry.run_due(db, 7, utcnow() + timedelta(days=6)) == (1, 0)
    assert _events(db, image_id, "member.expiring") == 2


def test_inbox_marks_a_share_expiring_within_the_warning_days(api: Callers, world: World) -> None:
    _shared_with_beta(api, world, _at(timedelta(days=3)))
    entry = api.bob.get("/v2/shared-images/invitations").json()["invitations"][0]
    assert entry["expiring"] is True


def test_the_server_ends_shares_in_the_background(settings: Settings, db: Database, world: World) -> None:
    with callers_with(settings, db, world, member_expiry_poll_seconds=1, webhook_poll_seconds=0) as api:
        beta = world.projects["beta"]
        image_id = share(api.alice, beta, api.bob)
        soon = _at(timedelta(seconds=2))
        assert api.alice.put(_expiry_url(image_id, beta), json={"expires_at": soon}).status_code == 200
        deadline = time.monotonic() + 15
        while api.bob.get(f"/v2/images/{image_id}").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert api.bob.get(f"/v2/images/{image_id}").status_code == 404
        assert _events(db, image_id, "member.expired") == 1


def test_two_nodes_end_each_share_once(api: Callers, settings: Settings, world: World) -> None:
    """Two nodes (two engines on one database) run the expiry round at the same moment."""
    image_ids = [_shared_with_beta(api, world, _at(timedelta(minutes=1))) for _ in range(20)]
    nodes = [Database(settings.database), Database(settings.database)]
    start, ended = threading.Barrier(2), [0, 0]
    at = utcnow() + timedelta(minutes=2)

    def node(n: int) -> None:
        start.wait()
        ended[n] = expiry.end_expired(nodes[n], at)

    threads = [threading.Thread(target=node, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(ended) == 20
    assert all(_events(nodes[0], i, "member.expired") == 1 for i in image_ids)
    for database in nodes:
        database.dispose()


def test_expiry_rejects_naive_past_now(api: Callers, world: World) -> None:
    with pytest.raises(Exception, match="future"):
        expiry.parse_expiry("2020-01-01T00:00:00", now=datetime(2021, 1, 1))
