"""Per-project request rates (spyglass.images.rates): off by default, 429 with Retry-After past the
limit, counted per project and per kind, in the database every node shares."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.tables import request_counts
from spyglass.images import rates
from spyglass.settings import SettingsError, load_settings
from tests.api.helpers import OCTET, create
from tests.conftest import Callers, World, reconfigure


def test_rates_are_off_by_default(api: Callers) -> None:
    for _ in range(30):
        assert api.alice.post("/v2/images", json={}).status_code == 201


def test_image_creates_past_the_rate_get_429_with_retry_after(api: Callers) -> None:
    reconfigure(api.alice.client, rate_limit_image_creates=3, rate_limit_window_seconds=3600)
    for _ in range(3):
        assert api.alice.post("/v2/images", json={}).status_code == 201
    refused = api.alice.post("/v2/images", json={})
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 3600
    assert refused.json()["message"].startswith("Too many image creates from project ")
    # Another project has its own count; other kinds of request are not limited by this one.
    assert api.bob.post("/v2/images", json={}).status_code == 201
    assert api.alice.get("/v2/images").status_code == 200


def test_uploads_imports_and_member_adds_have_their_own_rates(api: Callers, world: World) -> None:
    reconfigure(
        api.alice.client,
        rate_limit_uploads=1,
        rate_limit_imports=1,
        rate_limit_member_adds=1,
        rate_limit_window_seconds=3600,
    )
    first, second = create(api.alice), create(api.alice)
    assert api.alice.put(f"/v2/images/{first['id']}/file", content=b"a", headers=OCTET).status_code == 204
    # A stage is an upload too.
    refused = api.alice.put(f"/v2/images/{second['id']}/stage", content=b"b", headers=OCTET)
    assert refused.status_code == 429
    body = {"method": {"name": "web-download", "uri": "http://192.0.2.1/x"}}
    assert api.alice.post(f"/v2/images/{second['id']}/import", json=body).status_code != 429
    assert api.alice.post(f"/v2/images/{second['id']}/import", json=body).status_code == 429
    shared = create(api.alice, visibility="shared")
    members = f"/v2/images/{shared['id']}/members"
    projects = world.projects
    assert api.alice.post(members, json={"member": projects["beta"]}).status_code == 200
    assert api.alice.post(members, json={"member": projects["gamma"]}).status_code == 429


def test_a_window_counts_afresh_and_old_windows_go(db: Database) -> None:
    ctx = RequestContext("u", "p", frozenset({"member"}))
    rate = rates.Rate(limit=1, window_seconds=1)
    rates.admit(db, ctx, rates.UPLOADS, rate)
    time.sleep(1.1)
    # A new window: admitted again, and the old window's row is gone.
    rates.admit(db, ctx, rates.UPLOADS, rate)
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(request_counts)).scalar_one() == 1


def test_rate_settings_are_validated() -> None:
    env = {"SPYGLASS_RATE_LIMIT_UPLOADS": "5", "SPYGLASS_QUOTA_ENFORCEMENT": "false"}
    loaded = load_settings(environ=env)
    assert (loaded.rate_limit_uploads, loaded.quota_enforcement) == (5, False)
    for name, value in (("RATE_LIMIT_WINDOW_SECONDS", "0"), ("RATE_LIMIT_IMPORTS", "-1")):
        with pytest.raises(SettingsError, match=name.lower()):
            load_settings(environ={f"SPYGLASS_{name}": value})
