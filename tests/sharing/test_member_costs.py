"""What adding and removing a member costs the database (issue 13): the statements of each, pinned
so that they cannot grow unnoticed, and the work they skip only when it does not apply."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.tables import image_events, webhook_deliveries
from spyglass.errors import Conflict, Invalid, TooLarge
from spyglass.sharing import members
from tests.api.helpers import create
from tests.api.test_authentication import Statements
from tests.conftest import Callers, World

# The image (read and, on PostgreSQL, locked first: the statement of `lock=True`), what the checks
# need (origin, duplicate, project, quota count, trust), the row, the event (which also says
# whether a webhook listens).
ADD = ["images", "admission", "insert member", "insert event"]
# The image, the row deleted (returning what it was; a refusal rolls it back), the event.
REMOVE = ["images", "delete returning the row", "insert event"]
QUOTA = 128


def _work(db: Database, seen: list[str]) -> list[str]:
    """The statements but the transaction's own (BEGIN) and PostgreSQL's image lock."""
    lock = "FOR UPDATE" if db.engine.dialect.name == "postgresql" else "\0"
    return [
        s for s in seen if not s.startswith("BEGIN") and not (s.startswith("SELECT images.id ") and lock in s)
    ]


def _alice(world: World) -> RequestContext:
    return RequestContext(world.users["alice"], world.projects["alpha"], frozenset({"member"}))


def test_a_member_add_runs_four_statements_and_a_remove_three(
    api: Callers, db: Database, world: World
) -> None:
    image_id = create(api.alice, visibility="shared")["id"]
    beta, alice = world.projects["beta"], _alice(world)
    for _ in range(2):  # the second time round, the first remove's row is gone with its expiry
        body = {"member": beta, "expires_at": "2999-01-01T00:00:00Z"}
        with Statements(db.engine, this_thread=True) as add:
            row = members.add_member(db, alice, image_id, body, quota=QUOTA, validate=True)
        assert row["status"] == "pending" and row["expires_at"].year == 2999
        # A body that sets an expiry adds its two (spyglass.sharing.expiry_queries.set_expiry).
        assert len(_work(db, add.seen)) == len(ADD) + 2, add.seen
        with Statements(db.engine, this_thread=True) as remove:
            members.delete_member(db, alice, image_id, beta)
        assert len(_work(db, remove.seen)) == len(REMOVE), remove.seen
    with Statements(db.engine, this_thread=True) as add:
        row = members.add_member(db, alice, image_id, {"member": beta}, quota=QUOTA, validate=True)
    assert "expires_at" not in row
    assert len(_work(db, add.seen)) == len(ADD), add.seen
    with db.read() as conn:
        kinds = conn.execute(select(image_events.c.event_type).where(image_events.c.image_id == image_id))
        assert list(kinds.scalars()) == ["member.added", "member.removed"] * 2 + ["member.added"]


def test_the_checks_read_in_one_statement_still_refuse_in_glance_s_order(
    api: Callers, db: Database, world: World
) -> None:
    image_id = create(api.alice, visibility="shared")["id"]
    beta, gamma, alice = world.projects["beta"], world.projects["gamma"], _alice(world)
    assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": beta}).status_code == 200
    # Taken and over the quota: the duplicate is named.
    with pytest.raises(Conflict):
        members.add_member(db, alice, image_id, {"member": beta}, quota=1, validate=True)
    # No such project and over the quota: the project is named.
    with pytest.raises(Invalid, match="does not exist"):
        members.add_member(db, alice, image_id, {"member": "no-such-project"}, quota=1, validate=True)
    with pytest.raises(TooLarge):
        members.add_member(db, alice, image_id, {"member": gamma}, quota=1, validate=True)
    # Without validation a project the directory does not know is a member like any other.
    row = members.add_member(db, alice, image_id, {"member": "no-such-project"}, quota=QUOTA, validate=False)
    assert row["status"] == "pending"
    # A project that trusts the owner starts accepted.
    rule = api.carol.post("/v2/shared-images/auto-accept", json={"owner": world.projects["alpha"]})
    assert rule.status_code in (200, 201), rule.text
    assert (
        members.add_member(db, alice, image_id, {"member": gamma}, quota=QUOTA, validate=True)["status"]
        == "accepted"
    )


def test_an_event_queues_deliveries_only_for_a_project_with_a_webhook(
    api: Callers, db: Database, world: World
) -> None:
    image_id = create(api.alice, visibility="shared")["id"]
    beta, alice = world.projects["beta"], _alice(world)
    with Statements(db.engine, this_thread=True) as add:
        members.add_member(db, alice, image_id, {"member": beta}, quota=QUOTA, validate=True)
    assert not any("webhook_deliveries" in s for s in add.seen)
    hook = api.bob.post("/v2/webhooks", json={"url": "https://hooks.example.test/spyglass"})
    assert hook.status_code == 201, hook.text
    members.delete_member(db, alice, image_id, beta)
    with db.read() as conn:
        queued = conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one()
    assert queued == 1
