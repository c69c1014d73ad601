"""validate_member_ids with identity = "keystone": projects are read from the real Keystone, and a
service user that may not read them is said at start-up and refused with 503, never a pass."""

from __future__ import annotations

import dataclasses
import logging
import uuid

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.db.tables import projects
from spyglass.keystone_settings import KeystoneAuthtoken
from spyglass.settings import Settings
from spyglass.sharing.bulk import MAX_PAIRS
from tests.keystone import Keystone


def _app(settings: Settings, db: Database, options: dict[str, object]) -> TestClient:
    configured = dataclasses.replace(
        settings, identity="keystone", keystone_authtoken=KeystoneAuthtoken(**options)
    )  # type: ignore[arg-type]
    return TestClient(create_app(configured, db=db, store=FilesystemStore(settings.blob_dir)))


def _shared_image(client: TestClient, token: str) -> str:
    body = {"name": "s", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}
    created = client.post("/v2/images", json=body, headers={"X-Auth-Token": token})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_members_are_checked_in_keystone(settings: Settings, db: Database, keystone: Keystone) -> None:
    owner = keystone.account("owner")
    other = keystone.account("other")
    with _app(settings, db, keystone.authtoken_options()) as client:
        token = keystone.account_token(owner)
        image = _shared_image(client, token)
        headers = {"X-Auth-Token": token, "Accept": "application/json"}
        added = client.post(f"/v2/images/{image}/members", json={"member": other.project_id}, headers=headers)
        assert added.status_code == 200, added.text
        unknown = client.post(f"/v2/images/{image}/members", json={"member": "0" * 32}, headers=headers)
        assert unknown.status_code == 400 and "does not exist" in unknown.text
        third = keystone.account("third")
        keystone.set_project_enabled(third.project_id, False)
        disabled = client.post(
            f"/v2/images/{image}/members", json={"member": third.project_id}, headers=headers
        )
        assert disabled.status_code == 400 and "is disabled" in disabled.text


def test_a_service_user_that_cannot_read_projects_is_warned_and_refused(
    settings: Settings, db: Database, keystone: Keystone, caplog: pytest.LogCaptureFixture
) -> None:
    # A service user with the `service` role on its project, but no role on the system.
    blind = keystone.account("blind-service", role="service")
    options = keystone.authtoken_options(
        username=blind.user_name, password=blind.password, project_name=blind.project_name
    )
    owner = keystone.account("owner")
    # Quotas off: the same missing role keeps Keystone's limits unread, and a create would be
    # refused with 503 (fail closed, tests/identity/test_keystone_limits.py).
    unlimited = dataclasses.replace(settings, quota_enforcement=False)
    with caplog.at_level(logging.WARNING), _app(unlimited, db, options) as client:
        assert "give it the role 'reader' on the system" in caplog.text
        token = keystone.account_token(owner)
        image = _shared_image(client, token)
        headers = {"X-Auth-Token": token, "Accept": "application/json"}
        refused = client.post(
            f"/v2/images/{image}/members", json={"member": owner.project_id}, headers=headers
        )
        assert refused.status_code == 503, refused.text
        assert "could not be asked about projects" in refused.json()["message"]


@pytest.mark.parametrize("others", [0, 11], ids=["few", "many"])
def test_shares_in_bulk_are_checked_in_keystone_now(
    settings: Settings, db: Database, keystone: Keystone, others: int
) -> None:
    owner = keystone.account("owner")
    live, later_disabled, later_deleted = (keystone.create_project(p)["id"] for p in ("live", "off", "gone"))
    # More live projects: each is read from Keystone on its own, several at a time.
    extra = [keystone.create_project("many")["id"] for _ in range(others)]
    with _app(settings, db, keystone.authtoken_options(http_connect_timeout=30)) as client:
        token = keystone.account_token(owner)
        headers = {"X-Auth-Token": token, "Accept": "application/json"}
        first = _shared_image(client, token)
        # Single adds copy the projects as Keystone has them then: enabled and present.
        for project_id in (later_disabled, later_deleted):
            added = client.post(f"/v2/images/{first}/members", json={"member": project_id}, headers=headers)
            assert added.status_code == 200, added.text
        keystone.set_project_enabled(later_disabled, False)
        keystone.delete_project(later_deleted)
        second = _shared_image(client, token)
        body = {"action": "add", "images": [second], "members": [live, later_disabled, later_deleted, *extra]}
        answered = client.post("/v2/shared-images/bulk", json=body, headers=headers)
        assert answered.status_code == 200, answered.text
        results = {r["member_id"]: r for r in answered.json()["results"]}
        assert results[live]["status"] == 200
        assert all(results[project_id]["status"] == 200 for project_id in extra)
        assert results[later_disabled]["status"] == 400 and "is disabled" in results[later_disabled]["error"]
        assert results[later_deleted]["status"] == 400 and "does not exist" in results[later_deleted]["error"]


def _copied(db: Database, project_id: str) -> bool:
    with db.read() as conn:
        return conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first() is not None


def test_a_bulk_call_refused_or_for_images_out_of_reach_reads_no_project(
    settings: Settings, db: Database, keystone: Keystone
) -> None:
    owner, stranger = keystone.account("owner"), keystone.account("stranger")
    asked = [keystone.create_project("asked")["id"] for _ in range(4)]
    admitted = keystone.create_project("admitted")["id"]
    limited = dataclasses.replace(settings, rate_limit_member_adds=1)
    with _app(limited, db, keystone.authtoken_options(http_connect_timeout=30)) as client:
        token = keystone.account_token(owner)
        headers = {"X-Auth-Token": token, "Accept": "application/json"}
        image = _shared_image(client, token)
        # Too many pairs: refused before anything is read.
        images = [str(uuid.uuid4()) for _ in range(MAX_PAIRS // 100 + 1)]
        members = [asked[0], *(uuid.uuid4().hex for _ in range(99))]
        too_many = {"action": "add", "images": images, "members": members}
        assert client.post("/v2/shared-images/bulk", json=too_many, headers=headers).status_code == 413
        # A malformed body.
        bad = {"action": "add", "images": [image], "members": [asked[1], 7]}
        assert client.post("/v2/shared-images/bulk", json=bad, headers=headers).status_code == 400
        # Images the caller cannot see, or may not share.
        stranger_headers = {"X-Auth-Token": keystone.account_token(stranger), "Accept": "application/json"}
        unseen = {"action": "add", "images": [image, str(uuid.uuid4())], "members": [asked[2]]}
        answered = client.post("/v2/shared-images/bulk", json=unseen, headers=stranger_headers)
        assert answered.status_code == 200, answered.text
        assert [r["status"] for r in answered.json()["results"]] == [404, 404]
        # Past the rate of member adds (1): the second call is refused before anything is read.
        first = {"action": "add", "images": [image], "members": [admitted]}
        added = client.post("/v2/shared-images/bulk", json=first, headers=headers)
        assert added.status_code == 200 and added.json()["results"][0]["status"] == 200, added.text
        second = {"action": "add", "images": [image], "members": [asked[3]]}
        assert client.post("/v2/shared-images/bulk", json=second, headers=headers).status_code == 429
    assert [_copied(db, project_id) for project_id in asked] == [False] * 4
    assert _copied(db, admitted)
