"""The v2.17 locations API: GET and POST /v2/images/{id}/locations, for the `service` role."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from spyglass import request_ids
from spyglass.blobs import BlobStore
from spyglass.blobs.registry import location_url
from spyglass.db.engine import Database
from spyglass.identity import bootstrap as bs
from spyglass.identity import role_queries
from spyglass.identity.tokens import issue_token
from spyglass.images import queries as q
from tests.api.helpers import active, create, md5, message
from tests.conftest import PASSWORD, Caller, Callers, reconfigure

DATA = b"the data a service put in the store" * 1000
FORBIDDEN_FETCH = "You are not authorized to complete fetch_image_location action."
FORBIDDEN_ADD = "You are not authorized to complete add_image_location action."
NORMAL_USER = "http store must be enabled to use location API by normal user."


def _service_user(db: Database, name: str, roles: tuple[str, ...]) -> str:
    """A token of a user with `roles` in the project `service`, as Nova's and Cinder's users are."""
    with db.write() as conn:
        role_ids = bs.ensure_roles(conn)
        project = bs.ensure_project(conn, "service", bs.DEFAULT_DOMAIN_ID)
        user, _ = bs.ensure_user(conn, name, bs.DEFAULT_DOMAIN_ID, project, role_ids[roles[0]], PASSWORD)
        for role in roles[1:]:
            role_queries.add_assignment(conn, user, project, role_ids[role])
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": name, "domain": {"id": bs.DEFAULT_DOMAIN_ID}, "password": PASSWORD}
            },
        },
        "scope": {"project": {"name": "service", "domain": {"id": bs.DEFAULT_DOMAIN_ID}}},
    }
    token, _ = issue_token(db, {"auth": auth}, 3600)
    return token


@pytest.fixture
def nova(client: TestClient, db: Database) -> Caller:
    return Caller(client, _service_user(db, "nova", ("service",)))


@pytest.fixture
def store(client: TestClient) -> BlobStore:
    found: BlobStore = client.app.state.spyglass.stores.default  # type: ignore[attr-defined]
    return found


def _put(store: BlobStore, data: bytes = DATA) -> tuple[str, str]:
    """A blob written straight into the store, as a service with access to it would; its URL."""
    key = str(uuid.uuid4())
    writer = store.writer(key)
    writer.write(data)
    writer.commit()
    url = _url(store, key)
    return key, url


def _url(store: BlobStore, key: str) -> str:
    return location_url(store, key)


def _on_behalf(service: Caller, user: Caller) -> Caller:
    """The user's token with the service's as X-Service-Token, as Nova sends them."""
    both = Caller(user.client, user.token)
    original = both.request

    def request(method: str, url: str, **kwargs: Any) -> Any:
        headers = {"X-Service-Token": service.token, **kwargs.pop("headers", {})}
        return original(method, url, headers=headers, **kwargs)

    both.request = request  # type: ignore[method-assign]
    return both


def _settled(caller: Caller, image_id: str, *, until: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        image: dict[str, Any] = caller.get(f"/v2/images/{image_id}").json()
        if until(image) or time.monotonic() > deadline:
            return image
        time.sleep(0.02)


# ---- GET -----------------------------------------------------------------------------------------


def test_a_service_reads_the_locations(api: Callers, nova: Caller, store: BlobStore) -> None:
    image = active(api.admin, visibility="public")
    response = nova.get(f"/v2/images/{image['id']}/locations")
    assert response.status_code == 200
    [location] = response.json()
    assert location["metadata"] == {"store": store.name}
    assert location["url"].startswith("file:///")
    assert store.size(location["url"].rsplit("/", 1)[1]) == len(b"image-bytes")


def test_admins_read_the_locations_too(api: Callers) -> None:
    image = active(api.alice)
    assert len(api.admin.get(f"/v2/images/{image['id']}/locations").json()) == 1


def test_an_image_without_data_has_no_locations(api: Callers) -> None:
    image = create(api.alice)
    assert api.admin.get(f"/v2/images/{image['id']}/locations").json() == []


@pytest.mark.parametrize("who", ["alice", "rita"])
def test_normal_users_may_not_read_the_locations(api: Callers, who: str) -> None:
    image = active(api.alice)
    response = getattr(api, who).get(f"/v2/images/{image['id']}/locations")
    assert response.status_code == 403
    assert message(response) == FORBIDDEN_FETCH


def test_a_service_token_does_not_make_the_user_a_service_for_reading(api: Callers, nova: Caller) -> None:
    image = active(api.alice)
    response = _on_behalf(nova, api.alice).get(f"/v2/images/{image['id']}/locations")
    assert response.status_code == 403


def test_an_image_the_caller_cannot_see_is_404(api: Callers, nova: Caller) -> None:
    image = active(api.alice)
    assert nova.get(f"/v2/images/{image['id']}/locations").status_code == 404
    assert api.bob.get(f"/v2/images/{image['id']}/locations").status_code == 404
    assert nova.get(f"/v2/images/{uuid.uuid4()}/locations").status_code == 404


# ---- POST: who ---------------------------------------------------------------------------------------


def test_the_owner_alone_is_a_normal_user(api: Callers, store: BlobStore) -> None:
    image = create(api.alice)
    _, url = _put(store)
    response = api.alice.post(f"/v2/images/{image['id']}/locations", json={"url": url})
    assert response.status_code == 403
    assert message(response) == NORMAL_USER
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


def test_a_reader_of_the_owner_project_is_refused(api: Callers, store: BlobStore) -> None:
    image = create(api.alice)
    _, url = _put(store)
    response = api.rita.post(f"/v2/images/{image['id']}/locations", json={"url": url})
    assert response.status_code == 403
    assert message(response) == FORBIDDEN_ADD


def test_another_project_gets_404(api: Callers, nova: Caller, store: BlobStore) -> None:
    image = create(api.alice)
    _, url = _put(store)
    assert api.bob.post(f"/v2/images/{image['id']}/locations", json={"url": url}).status_code == 404
    assert nova.post(f"/v2/images/{image['id']}/locations", json={"url": url}).status_code == 404


def test_the_owner_with_a_service_token_adds_a_location(api: Callers, nova: Caller, store: BlobStore) -> None:
    image = create(api.alice)
    key, url = _put(store)
    response = _on_behalf(nova, api.alice).post(f"/v2/images/{image['id']}/locations", json={"url": url})
    assert response.status_code == 202
    assert response.content == b""
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "active"
    assert shown["size"] == len(DATA)
    shown = _settled(api.alice, image["id"], until=lambda i: i["os_hash_value"])
    assert shown["checksum"] == md5(DATA)
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert "os_glance_import_task" not in shown
    assert b"".join(api.alice.get(f"/v2/images/{image['id']}/file").iter_bytes()) == DATA
    assert api.admin.get(f"/v2/images/{image['id']}/locations").json()[0]["url"] == url
    # The image owns its location now: deleting it deletes the data.
    assert api.alice.delete(f"/v2/images/{image['id']}").status_code == 204
    with pytest.raises(LookupError):
        store.size(key)


def test_a_bad_service_token_adds_no_role(api: Callers, store: BlobStore, client: TestClient) -> None:
    image = create(api.alice)
    _, url = _put(store)
    forged = _on_behalf(Caller(client, "not-a-token"), api.alice)
    response = forged.post(f"/v2/images/{image['id']}/locations", json={"url": url})
    assert response.status_code == 403
    assert message(response) == NORMAL_USER


def test_an_admin_without_the_service_role_is_a_normal_user(api: Callers, store: BlobStore) -> None:
    image = create(api.alice)
    _, url = _put(store)
    response = api.admin.post(f"/v2/images/{image['id']}/locations", json={"url": url})
    assert response.status_code == 403
    assert message(response) == NORMAL_USER


def test_a_service_user_adds_a_location_to_an_image_it_sees(
    client: TestClient, db: Database, store: BlobStore
) -> None:
    cinder = Caller(client, _service_user(db, "cinder", ("service", "member")))
    image = create(cinder)
    _, url = _put(store)
    assert cinder.post(f"/v2/images/{image['id']}/locations", json={"url": url}).status_code == 202
    assert cinder.get(f"/v2/images/{image['id']}").json()["status"] == "active"


# ---- POST: what ----------------------------------------------------------------------------------------


def test_only_a_queued_image_takes_a_location(api: Callers, nova: Caller, store: BlobStore) -> None:
    image = active(api.alice)
    _, url = _put(store)
    # The status is checked before the caller, as Glance does.
    for caller in (_on_behalf(nova, api.alice), api.rita):
        response = caller.post(f"/v2/images/{image['id']}/locations", json={"url": url})
        assert response.status_code == 409
        assert message(response) == "It's not allowed to add locations if image status is active."


@pytest.mark.parametrize(
    "url",
    [
        "rbd://fsid/images/abc/snap",
        "http://example.com/image.raw",
        "file:///etc/passwd",
        "file:///{root}/../{key}",
        "file:///{root}/nested/{key}",
        "",
    ],
)
def test_a_url_outside_the_stores_is_refused(api: Callers, nova: Caller, store: BlobStore, url: str) -> None:
    image = create(api.alice)
    key, good = _put(store)
    root = good.rsplit("/", 1)[0].removeprefix("file:///")
    response = _on_behalf(nova, api.alice).post(
        f"/v2/images/{image['id']}/locations", json={"url": url.format(root=root, key=key)}
    )
    assert response.status_code == 400
    assert message(response).startswith("Invalid location: ")
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


def test_a_url_without_data_is_refused(api: Callers, nova: Caller, store: BlobStore) -> None:
    image = create(api.alice)
    response = _on_behalf(nova, api.alice).post(
        f"/v2/images/{image['id']}/locations", json={"url": _url(store, str(uuid.uuid4()))}
    )
    assert response.status_code == 400
    assert "there is no data at" in message(response)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "'url' is a required property"),
        ({"url": 5}, "'url' is not a string"),
        ({"url": "x", "validation_data": {"checksum": "0" * 32}}, "Additional properties are not allowed"),
        ({"url": "x", "validation_data": {"os_hash_algo": "sha384", "os_hash_value": "00"}}, "is not one of"),
        ({"url": "x", "validation_data": {"os_hash_value": "00"}}, "together or not at all"),
        ({"url": "x", "validation_data": []}, "'validation_data' is not an object"),
    ],
)
def test_a_body_outside_the_schema_is_400(api: Callers, nova: Caller, body: Any, says: str) -> None:
    image = create(api.alice)
    response = _on_behalf(nova, api.alice).post(f"/v2/images/{image['id']}/locations", json=body)
    assert response.status_code == 400
    assert message(response).startswith("Provided object does not match schema 'location': ")
    assert says in message(response)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("zz", "os_hash_value (zz) is not a valid hexadecimal value"),
        (
            "ab" * 10,
            f"os_hash_value: ({'ab' * 10}) is not the correct size for (sha256) (should be (32) bytes)",
        ),
    ],
)
def test_a_malformed_vouched_hash_is_400(
    api: Callers, nova: Caller, store: BlobStore, value: str, says: str
) -> None:
    image = create(api.alice)
    _, url = _put(store)
    body = {"url": url, "validation_data": {"os_hash_algo": "sha256", "os_hash_value": value}}
    response = _on_behalf(nova, api.alice).post(f"/v2/images/{image['id']}/locations", json=body)
    assert response.status_code == 400
    assert message(response) == says


def test_a_matching_vouched_hash_activates_the_image(api: Callers, nova: Caller, store: BlobStore) -> None:
    image = create(api.alice)
    _, url = _put(store)
    vouched = {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(DATA).hexdigest()}
    response = _on_behalf(nova, api.alice).post(
        f"/v2/images/{image['id']}/locations", json={"url": url, "validation_data": vouched}
    )
    assert response.status_code == 202
    shown = _settled(api.alice, image["id"], until=lambda i: i["status"] != "importing")
    assert shown["status"] == "active"
    assert shown["os_hash_algo"] == "sha256"
    assert shown["os_hash_value"] == vouched["os_hash_value"]
    assert shown["checksum"] == md5(DATA)


def test_a_wrong_vouched_hash_puts_the_image_back_to_queued(
    api: Callers, nova: Caller, store: BlobStore
) -> None:
    image = create(api.alice)
    key, url = _put(store)
    vouched = {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(b"other data").hexdigest()}
    response = _on_behalf(nova, api.alice).post(
        f"/v2/images/{image['id']}/locations", json={"url": url, "validation_data": vouched}
    )
    assert response.status_code == 202
    shown = _settled(api.alice, image["id"], until=lambda i: i["status"] != "importing")
    assert shown["status"] == "queued"
    assert (shown["size"], shown["checksum"], shown["os_hash_algo"], shown["os_hash_value"]) == (None,) * 4
    assert "os_glance_import_task" not in shown
    assert api.admin.get(f"/v2/images/{image['id']}/locations").json() == []
    # Glance's revert removes the location's data too.
    with pytest.raises(LookupError):
        store.size(key)
    # The image takes another location afterwards.
    _, again = _put(store)
    assert (
        _on_behalf(nova, api.alice)
        .post(f"/v2/images/{image['id']}/locations", json={"url": again})
        .status_code
        == 202
    )


def test_without_secure_hash_the_vouched_hash_is_taken(
    api: Callers, nova: Caller, store: BlobStore, client: TestClient
) -> None:
    reconfigure(client, do_secure_hash=False)
    image = create(api.alice)
    _, url = _put(store)
    vouched = {"os_hash_algo": "sha512", "os_hash_value": "ab" * 64}
    response = _on_behalf(nova, api.alice).post(
        f"/v2/images/{image['id']}/locations", json={"url": url, "validation_data": vouched}
    )
    assert response.status_code == 202
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["os_hash_value"], shown["checksum"]) == ("active", "ab" * 64, None)


def test_without_secure_hash_nor_vouched_hash_the_image_has_none(
    api: Callers, nova: Caller, store: BlobStore, client: TestClient
) -> None:
    reconfigure(client, do_secure_hash=False)
    image = create(api.alice)
    _, url = _put(store)
    assert (
        _on_behalf(nova, api.alice).post(f"/v2/images/{image['id']}/locations", json={"url": url}).status_code
        == 202
    )
    time.sleep(0.1)
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["size"], shown["os_hash_value"]) == ("active", len(DATA), None)


def test_an_image_under_import_refuses_a_location(
    api: Callers, nova: Caller, store: BlobStore, db: Database
) -> None:
    image = create(api.alice)
    with db.write() as conn:
        # An import (or another location being hashed) holds the image's lock.
        q.replace_properties(conn, image["id"], {}, {"os_glance_import_task": "another-task"})
    _, url = _put(store)
    response = _on_behalf(nova, api.alice).post(f"/v2/images/{image['id']}/locations", json={"url": url})
    assert response.status_code == 409
    assert message(response) == (
        f"New operation on image '{image['id']}' is not permitted as prior operation is still in progress"
    )


def test_the_log_line_names_both_request_ids(
    api: Callers, nova: Caller, store: BlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    image = create(api.alice)
    _, url = _put(store)
    global_id = "req-11111111-2222-4333-8444-555555555555"
    caplog.handler.addFilter(request_ids.LogFilter())
    with caplog.at_level(logging.INFO, logger="spyglass.data.location_import"):
        response = _on_behalf(nova, api.alice).post(
            f"/v2/images/{image['id']}/locations",
            json={"url": url},
            headers={"X-OpenStack-Request-ID": global_id},
        )
    assert response.headers["x-openstack-request-id"] == global_id
    [added] = [r for r in caplog.records if "location" in r.getMessage() and "added" in r.getMessage()]
    assert added.global_request_id == global_id  # type: ignore[attr-defined]
    assert added.request_id.startswith("req-")  # type: ignore[attr-defined]
    assert added.request_id != global_id  # type: ignore[attr-defined]
