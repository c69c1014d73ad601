"""Cinder's and Nova's image calls, made with python-glanceclient as cinder/image/glance.py and
nova/image/glance.py make them, against a real `spyglass serve`.

The clients are built as those modules build them: Cinder with the user's auth, or for its
privileged calls (the v2.17 locations API) the auth of its `[glance]` section, a service user;
Nova with the user's auth wrapped with a service token (`[service_user] send_service_user_token`).
Every client carries the global request id of the user's action. The service users are users of
the project `service` with the role `service`, as a deployment creates them.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import glanceclient
import pytest
from glanceclient import exc
from keystoneauth1 import service_token
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.e2e.clients import cloud_auth
from tests.e2e.conftest import Server

USER, OTHER, ADMIN = "spyglass-a", "spyglass-b", "spyglass-admin"
SERVICE_PASSWORD = "service-user-password"
DATA = os.urandom(3 * 1024 * 1024 + 17)


def _global_id() -> str:
    return f"req-{uuid.uuid4()}"


@pytest.fixture(scope="module")
def service_users(server: Server) -> dict[str, v3.Password]:
    """`nova` and `cinder`: users of the project `service` with the role `service`."""
    server.openstack(ADMIN, "project", "create", "service")
    found = {}
    for name in ("nova", "cinder"):
        server.openstack(
            ADMIN, "user", "create", "--project", "service", "--password", SERVICE_PASSWORD, name
        )
        server.openstack(ADMIN, "role", "add", "--project", "service", "--user", name, "service")
        found[name] = _password(server, name, "service", SERVICE_PASSWORD)
    return found


def _password(server: Server, user: str, project: str, password: str) -> v3.Password:
    auth_url = cloud_auth(server, USER)["auth_url"]
    return v3.Password(
        auth_url=auth_url,
        username=user,
        password=password,
        project_name=project,
        user_domain_id="default",
        project_domain_id="default",
    )


def _user_auth(server: Server, cloud: str) -> v3.Password:
    return v3.Password(**cloud_auth(server, cloud))


def _endpoint(server: Server) -> str:
    endpoint: str = ks_session.Session(auth=_user_auth(server, USER)).get_endpoint(service_type="image")
    return endpoint


def cinder_client(server: Server, auth: Any, global_id: str) -> Any:
    """cinder.image.glance._create_glance_client with auth_strategy = keystone."""
    return glanceclient.Client(
        "2", _endpoint(server), auth=auth, session=ks_session.Session(), global_request_id=global_id
    )


def nova_client(server: Server, user_auth: Any, service_auth: Any | None, global_id: str) -> Any:
    """nova.image.glance._glanceclient_from_endpoint, with or without a service token."""
    auth = user_auth
    if service_auth is not None:
        auth = service_token.ServiceTokenAuthWrapper(user_auth=user_auth, service_auth=service_auth)
    return glanceclient.Client(
        "2",
        session=ks_session.Session(),
        auth=auth,
        endpoint_override=_endpoint(server),
        global_request_id=global_id,
    )


def _image(server: Server, cloud: str, *options: str) -> str:
    path = server.data_dir.parent / f"data-{uuid.uuid4()}.raw"
    path.write_bytes(DATA)
    return str(server.create_image(cloud, f"img-{uuid.uuid4().hex[:8]}", "--file", str(path), *options)["id"])


# ---- Cinder: create a volume from an image -----------------------------------------------------------------


def cinder_get_location(privileged: Any, user: Any, image_id: str) -> tuple[str | None, list[Any]]:
    """GlanceImageService.get_location: the v2.17 call first, then `get` when it is refused."""
    image_meta: Any = {}
    for method, client in (("get_image_locations", privileged), ("get", user)):
        try:
            image_meta = getattr(client.images, method)(image_id)
            if image_meta:
                break
        except exc.HTTPForbidden:
            continue  # Cinder logs that a [glance] section is needed, and goes on.
    direct_url = getattr(image_meta, "direct_url", None)
    if direct_url:
        return direct_url, getattr(image_meta, "locations", [])
    return None, [meta for meta in image_meta if isinstance(meta, dict)]


def cinder_create_volume_from_image(
    privileged: Any, user: Any, image_id: str, volume: Path, direct_schemes: tuple[str, ...] = ()
) -> list[Any]:
    """The calls of Cinder's create-volume-from-image: show (API), get_location (manager), show,
    then download (file:// locations are copied directly when allowed_direct_url_schemes has file)."""
    shown = user.images.get(image_id)
    assert shown["status"] == "active"
    user.schemas.get("image")
    _, image_locations = cinder_get_location(privileged, user, image_id)
    user.images.get(image_id)
    if "file" in direct_schemes:
        _, again = cinder_get_location(privileged, user, image_id)
        for location in again:
            parsed = urlparse(location["url"])
            if parsed.scheme == "file":
                volume.write_bytes(Path(parsed.path).read_bytes())
                return image_locations
    with volume.open("wb") as handle:
        for chunk in user.images.data(image_id):
            handle.write(chunk)
    return image_locations


def test_cinder_as_a_normal_user_falls_back_to_the_download(server: Server, tmp_path: Path) -> None:
    # No [glance] section: the privileged calls carry the user's own auth, and get 403.
    image_id = _image(server, USER)
    global_id = _global_id()
    user = cinder_client(server, _user_auth(server, USER), global_id)
    with pytest.raises(exc.HTTPForbidden, match="fetch_image_location"):
        user.images.get_image_locations(image_id)
    found = cinder_create_volume_from_image(user, user, image_id, tmp_path / "volume")
    assert found == []
    assert (tmp_path / "volume").read_bytes() == DATA


def test_cinder_with_a_service_user_reads_the_locations(
    server: Server, service_users: dict[str, v3.Password], tmp_path: Path
) -> None:
    image_id = _image(server, ADMIN, "--public")
    global_id = _global_id()
    privileged = cinder_client(server, service_users["cinder"], global_id)
    user = cinder_client(server, _user_auth(server, USER), global_id)
    found = cinder_create_volume_from_image(privileged, user, image_id, tmp_path / "volume", ("file",))
    [location] = found
    assert location["metadata"] == {"store": "fs"}
    assert Path(urlparse(location["url"]).path).parent == (server.data_dir / "images").resolve()
    assert (tmp_path / "volume").read_bytes() == DATA
    # glanceclient keeps the request ids the server answered: the global id of the action.
    assert privileged.images.get_image_locations(image_id).request_ids == [global_id]


def test_cinder_with_a_service_user_cannot_see_a_private_image(
    server: Server, service_users: dict[str, v3.Password]
) -> None:
    # As Glance: the service role reads locations, it does not widen what the user `cinder` sees.
    image_id = _image(server, USER)
    privileged = cinder_client(server, service_users["cinder"], _global_id())
    with pytest.raises(exc.HTTPNotFound):
        privileged.images.get_image_locations(image_id)


# ---- Nova: snapshots ---------------------------------------------------------------------------------------


def nova_create_snapshot_image(client: Any, name: str) -> Any:
    """compute API snapshot(): GlanceImageServiceV2.create without data."""
    return client.images.create(
        name=name,
        container_format="bare",
        disk_format="raw",
        image_type="snapshot",
        instance_uuid=str(uuid.uuid4()),
        user_id="nova-e2e",
    )


def nova_update(
    client: Any, image_id: str, properties: dict[str, str], data: Any = None, location: str = ""
) -> Any:
    """GlanceImageServiceV2.update -> _update_v2 (purge_props=True: the current properties are read)."""
    current = client.images.get(image_id)
    remove = [k for k in current if k.startswith("nova_e2e_") and k not in properties]
    image = client.images.update(image_id, remove_props=remove, **properties)
    if location:
        image = client.images.add_image_location(image_id, location, {})
    if data is not None:
        client.images.upload(image_id, data)
        image = client.images.get(image_id)
    return image


def test_nova_standard_snapshot(server: Server) -> None:
    global_id = _global_id()
    client = nova_client(server, _user_auth(server, USER), None, global_id)
    snapshot = nova_create_snapshot_image(client, "snap-standard")
    assert client.images.get(snapshot["id"])["status"] == "queued"
    image = nova_update(client, snapshot["id"], {"nova_e2e_base": "yes"}, io.BytesIO(DATA))
    assert image["status"] == "active"
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert b"".join(client.images.data(snapshot["id"])) == DATA
    assert image.request_ids == [global_id]


@pytest.fixture
def snapshot_in_store(server: Server) -> Iterator[str]:
    """A snapshot written by the hypervisor host straight into the shared filesystem store."""
    path = (server.data_dir / "images" / str(uuid.uuid4())).resolve()
    path.write_bytes(DATA)
    yield path.as_uri()


def test_nova_direct_snapshot_with_a_service_token(
    server: Server, service_users: dict[str, v3.Password], snapshot_in_store: str
) -> None:
    global_id = _global_id()
    client = nova_client(server, _user_auth(server, USER), service_users["nova"], global_id)
    snapshot = nova_create_snapshot_image(client, "snap-direct")
    image = nova_update(client, snapshot["id"], {"nova_e2e_base": "yes"}, location=snapshot_in_store)
    # add_image_location answers with the image glanceclient reads after the 202: already active.
    assert image["status"] == "active"
    assert image["size"] == len(DATA)
    assert b"".join(client.images.data(snapshot["id"], do_checksum=False)) == DATA
    log = server.log.read_text()
    assert f"location {snapshot_in_store} added" in log
    [line] = [row for row in log.splitlines() if f"location {snapshot_in_store} added" in row]
    assert global_id in line


def test_nova_direct_snapshot_without_a_service_token_is_not_authorized(
    server: Server, snapshot_in_store: str
) -> None:
    # Glance answers 403 (Nova: ImageNotAuthorized) to a user without the service role; before
    # the locations API existed Spyglass answered 404, which Nova read as ImageNotFound.
    client = nova_client(server, _user_auth(server, USER), None, _global_id())
    snapshot = nova_create_snapshot_image(client, "snap-refused")
    with pytest.raises(exc.HTTPForbidden, match="http store must be enabled"):
        nova_update(client, snapshot["id"], {}, location=snapshot_in_store)
    assert client.images.get(snapshot["id"])["status"] == "queued"
    # The image is still queued: the standard snapshot's upload fills it.
    assert nova_update(client, snapshot["id"], {}, io.BytesIO(DATA))["status"] == "active"


def test_another_project_gets_404_for_the_locations(
    server: Server, service_users: dict[str, v3.Password]
) -> None:
    image_id = _image(server, USER)
    other = nova_client(server, _user_auth(server, OTHER), service_users["nova"], _global_id())
    with pytest.raises(exc.HTTPNotFound):
        other.images.add_image_location(image_id, "file:///nowhere", {})


# ---- request ids across a list ---------------------------------------------------------------------------


class RecordingSession(ks_session.Session):
    """A keystoneauth session that keeps the request id of every image API response."""

    answered: list[str]

    def request(self, url: str, method: str, **kwargs: Any) -> Any:
        response = super().request(url, method, **kwargs)
        if "/v2/images" in str(response.url):
            self.answered.append(response.headers.get("x-openstack-request-id", ""))
        return response


def test_every_page_of_a_list_answers_the_global_id(server: Server) -> None:
    for _ in range(3):
        _image(server, USER)
    global_id = _global_id()
    session = RecordingSession()
    session.answered = []
    client = glanceclient.Client(
        "2",
        session=session,
        auth=_user_auth(server, USER),
        endpoint_override=_endpoint(server),
        global_request_id=global_id,
    )
    images = list(client.images.list(page_size=1))
    assert len(images) >= 3
    # One page per image and a last, empty one: every one answered the global id.
    assert session.answered == [global_id] * (len(images) + 1)
