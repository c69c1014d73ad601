"""The visibility rule's two forms agree: the Python predicates and the SQL list filter.

Every combination of visibility x owner relation x caller's member status x owner suspended is
stored as one image; for every role x list filter the SQL filter must return exactly the images the
predicate lists. Hypothesis then draws random catalogues (several images per combination, other
members on the same images) to check the same agreement where rows interact.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, bindparam, insert, or_, select

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.tables import domains, image_members, images, metadata, projects
from spyglass.images.visibility import (
    MEMBER_FILTERS,
    MEMBER_STATUSES,
    VISIBILITIES,
    VISIBILITY_FILTERS,
    can_show,
    is_listed,
    list_branches,
    list_condition,
    list_parts,
)
from spyglass.timeutil import utcnow

ME, OTHER, SUSPENDED = "p-me", "p-other", "p-suspended"
ROLES = ("admin", "member", "reader")
FILTERS = list(itertools.product((None, *VISIBILITY_FILTERS), MEMBER_FILTERS))


@dataclass(frozen=True)
class Spec:
    visibility: str
    owner: str
    my_status: str | None
    other_status: str | None


def _context(role: str) -> RequestContext:
    roles = {"admin": {"admin", "member", "reader"}, "member": {"member", "reader"}, "reader": {"reader"}}[
        role
    ]
    return RequestContext(user_id="u", project_id=ME, roles=frozenset(roles))


def _database() -> Database:
    db = Database("sqlite://")
    metadata.create_all(db.engine)
    with db.write() as conn:
        conn.execute(insert(domains).values(id="d", name="d", description="", enabled=True))
        for pid, enabled in ((ME, True), (OTHER, True), (SUSPENDED, False)):
            conn.execute(
                insert(projects).values(id=pid, name=pid, domain_id="d", description="", enabled=enabled)
            )
    return db


def _store(db: Database, specs: list[Spec]) -> dict[str, Spec]:
    stored = {}
    now = utcnow()
    with db.write() as conn:
        for spec in specs:
            image_id = str(uuid.uuid4())
            conn.execute(
                insert(images).values(
                    id=image_id,
                    owner=spec.owner,
                    visibility=spec.visibility,
                    status="active",
                    created_at=now,
                    updated_at=now,
                    min_disk=0,
                    min_ram=0,
                    protected=False,
                    os_hidden=False,
                )
            )
            for member, status in ((ME, spec.my_status), ("p-third", spec.other_status)):
                if status is not None:
                    conn.execute(
                        insert(image_members).values(
                            image_id=image_id, member_id=member, status=status, created_at=now, updated_at=now
                        )
                    )
            stored[image_id] = spec
    return stored


def _check(db: Database, stored: dict[str, Spec]) -> None:
    with db.read() as conn:
        for role, (vis_filter, member_filter) in itertools.product(ROLES, FILTERS):
            ctx = _context(role)
            condition = list_condition(ctx, visibility_filter=vis_filter, member_filter=member_filter)
            found = set(conn.execute(select(images.c.id).where(condition)).scalars())
            expected = {
                image_id
                for image_id, s in stored.items()
                if is_listed(
                    ctx,
                    s.visibility,
                    s.owner,
                    s.my_status,
                    visibility_filter=vis_filter,
                    member_filter=member_filter,
                    owner_suspended=s.owner == SUSPENDED,
                )
            }
            assert found == expected, (role, vis_filter, member_filter)
            branches = list_branches(ctx, visibility_filter=vis_filter, member_filter=member_filter)
            if branches:
                covered = set(conn.execute(select(images.c.id).where(condition, or_(*branches))).scalars())
                assert covered == expected, ("branches miss rows", role, vis_filter, member_filter)
            _check_parts(conn, ctx, vis_filter, member_filter, expected)
            # A caller without a project: its own images and member rows are none.
            unscoped = dataclasses.replace(ctx, project_id=None)
            expected = {
                image_id
                for image_id, s in stored.items()
                if is_listed(
                    unscoped,
                    s.visibility,
                    s.owner,
                    None,
                    visibility_filter=vis_filter,
                    member_filter=member_filter,
                    owner_suspended=s.owner == SUSPENDED,
                )
            }
            _check_parts(conn, unscoped, vis_filter, member_filter, expected)


def _check_parts(
    conn: Connection, ctx: RequestContext, vis_filter: str | None, member_filter: str, expected: set[str]
) -> None:
    """The parts the list reads one by one admit together exactly what the predicate lists (and
    what list_condition admits, checked above)."""
    project = bindparam("project_id", ctx.project_id or "")
    parts = list_parts(ctx, project=project, visibility_filter=vis_filter, member_filter=member_filter)
    found = set()
    for part in parts:
        found |= set(conn.execute(select(images.c.id).where(part)).scalars())
    assert found == expected, ("parts", ctx.roles, ctx.project_id, vis_filter, member_filter)


@pytest.fixture(scope="module")
def shared_db() -> Iterator[Database]:
    db = _database()
    yield db
    db.dispose()


STATUSES = (None, *MEMBER_STATUSES)
ALL_SPECS = [
    Spec(*combo)
    for combo in itertools.product(VISIBILITIES, (ME, OTHER, SUSPENDED), STATUSES, (None, "accepted"))
]


def test_sql_filter_agrees_with_predicate_on_every_combination() -> None:
    db = _database()
    _check(db, _store(db, ALL_SPECS))
    db.dispose()


spec_strategy = st.builds(
    Spec,
    st.sampled_from(VISIBILITIES),
    st.sampled_from((ME, OTHER, SUSPENDED)),
    st.sampled_from(STATUSES),
    st.sampled_from(STATUSES),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(spec_strategy, min_size=1, max_size=12))
def test_sql_filter_agrees_with_predicate_on_random_catalogues(specs: list[Spec]) -> None:
    db = _database()
    _check(db, _store(db, specs))
    db.dispose()


@pytest.mark.parametrize("spec", ALL_SPECS, ids=str)
def test_listed_implies_showable(spec: Spec) -> None:
    """Whatever a list shows, show and download must also allow."""
    for role, (vis_filter, member_filter) in itertools.product(ROLES, FILTERS):
        ctx = _context(role)
        suspended = spec.owner == SUSPENDED
        if is_listed(
            ctx,
            spec.visibility,
            spec.owner,
            spec.my_status,
            visibility_filter=vis_filter,
            member_filter=member_filter,
            owner_suspended=suspended,
        ):
            assert can_show(ctx, spec.visibility, spec.owner, spec.my_status, suspended)


def test_member_rows_grant_nothing_unless_shared() -> None:
    ctx = _context("member")
    for visibility in ("private",):
        for status in MEMBER_STATUSES:
            assert not can_show(ctx, visibility, OTHER, status)
    assert can_show(ctx, "shared", OTHER, "pending")
    assert not can_show(ctx, "shared", OTHER, None)
    assert not can_show(ctx, "shared", SUSPENDED, "accepted", owner_suspended=True)
