"""The dashboard with identity = "keystone", in-process against the real Keystone of
scripts/ensure-keystone.sh: login, the project switcher and logout go through Keystone, and the token
then works on the dashboard exactly as on the API."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.api.dashboard.session import COOKIE
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.keystone_settings import KeystoneAuthtoken
from spyglass.settings import Settings
from tests.api.test_dashboard import BASE, csrf, login_form
from tests.conftest import reconfigure
from tests.keystone import Account, Keystone, Relay, keystone

__all__ = ["keystone"]

App = Callable[..., TestClient]
GENERIC_REFUSAL = "The request you have made requires authentication."


@pytest.fixture
def keystone_app(settings: Settings, db: Database, keystone: Keystone) -> Iterator[App]:
    """In-process Spyglass apps with identity = "keystone" (at `auth_url`, Keystone's by default)."""
    opened: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        # The shared test Keystone can take seconds to answer on a busy machine.
        options = {"http_connect_timeout": 60, **options}
        authtoken = KeystoneAuthtoken(**keystone.authtoken_options(**options))
        configured = dataclasses.replace(settings, identity="keystone", keystone_authtoken=authtoken)
        app = create_app(configured, db=db, store=FilesystemStore(settings.blob_dir))
        client = TestClient(app, base_url=BASE, follow_redirects=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def browser(app: TestClient) -> TestClient:
    return TestClient(app.app, base_url=BASE, follow_redirects=False)


def post_login(app: TestClient, account: Account, password: str = "", project: str = "") -> Any:
    session = browser(app)
    form = {
        "username": account.user_name,
        "password": password or account.password,
        "domain": account.domain_name,
        "project": project or account.project_name,
        **login_form(session),
    }
    return session, session.post("/dashboard/login", data=form)


def log_in(app: TestClient, account: Account, project: str = "") -> TestClient:
    session, answer = post_login(app, account, project=project)
    assert answer.status_code == 303, answer.text
    return session


def session_token(app: TestClient, session: TestClient) -> str:
    """The Keystone token sealed in the session cookie (the test holds the deployment's key)."""
    sealed = session.cookies[COOKIE].strip('"')  # the jar keeps the quotes Starlette put around it
    token: str = app.app.state.spyglass.secret_box.open(sealed, "dashboard-session")  # type: ignore[attr-defined]
    return token


def keystone_knows(keystone: Keystone, token: str) -> bool:
    found = keystone.http.get(
        f"{keystone.url}/auth/tokens",
        headers={"X-Auth-Token": keystone.admin_token(), "X-Subject-Token": token},
    )
    assert found.status_code in (200, 404), found.text
    return found.status_code == 200


def test_login_and_project_switch_across_two_keystone_projects(keystone_app: App, keystone: Keystone) -> None:
    app = keystone_app()
    kim = keystone.account("kim")
    second = keystone.create_project("kim-second")
    keystone.grant(kim.user_id, second["id"], "member")
    in_first = app.post(
        "/v2/images",
        json={"name": "first-project-image", "disk_format": "raw", "container_format": "bare"},
        headers={"X-Auth-Token": keystone.account_token(kim)},
    )
    assert in_first.status_code == 201, in_first.text

    session = log_in(app, kim)
    page = session.get("/dashboard/images").text
    assert "first-project-image" in page
    # The switcher lists what Keystone's GET /v3/auth/projects gives the user: both projects.
    assert kim.project_name in page and second["name"] in page
    token = session_token(app, session)
    assert app.app.state.authenticator.authenticate(token).project_id == kim.project_id  # type: ignore[attr-defined]

    switched = session.post(
        "/dashboard/project", data={"project_id": second["id"], "csrf_token": csrf(session)}
    )
    assert switched.status_code == 303, switched.text
    rescoped = session_token(app, session)
    assert rescoped != token and keystone_knows(keystone, rescoped)
    assert app.app.state.authenticator.authenticate(rescoped).project_id == second["id"]  # type: ignore[attr-defined]
    assert "first-project-image" not in session.get("/dashboard/images").text
    # A project the user has no role on: Keystone refuses the rescoping, the session stays as it was.
    stranger = keystone.create_project("not-kims")
    refused = session.post(
        "/dashboard/project", data={"project_id": stranger["id"], "csrf_token": csrf(session)}
    )
    assert refused.status_code == 401 and session_token(app, session) == rescoped


def test_sharing_by_project_name_asks_keystone(keystone_app: App, keystone: Keystone) -> None:
    app = keystone_app()
    owner, other = keystone.account("owner"), keystone.account("other")
    made = app.post(
        "/v2/images",
        json={"name": "to-share", "disk_format": "raw", "container_format": "bare"},
        headers={"X-Auth-Token": keystone.account_token(owner)},
    ).json()
    session = log_in(app, owner)
    form = {"member": other.project_name, "domain": other.domain_name, "csrf_token": csrf(session)}
    shared = session.post(f"/dashboard/images/{made['id']}/members", data=form)
    assert shared.status_code == 303, shared.text
    listed = app.get(
        f"/v2/images/{made['id']}/members", headers={"X-Auth-Token": keystone.account_token(owner)}
    ).json()
    assert [m["member_id"] for m in listed["members"]] == [other.project_id]


def test_logout_revokes_the_token_in_keystone(keystone_app: App, keystone: Keystone) -> None:
    app = keystone_app()
    lou = keystone.account("lou")
    session = log_in(app, lou)
    token, cookie = session_token(app, session), session.cookies[COOKIE]
    assert session.get("/dashboard/images").status_code == 200 and keystone_knows(keystone, token)
    assert session.post("/dashboard/logout", data={"csrf_token": csrf(session)}).status_code == 303
    assert not keystone_knows(keystone, token)
    # Neither the API (its validation cache forgot the token) nor the old cookie gets anywhere.
    assert app.get("/v2/images", headers={"X-Auth-Token": token}).status_code == 401
    replay = browser(app)
    replay.cookies.set(COOKIE, cookie, path="/dashboard")
    assert replay.get("/dashboard/images").headers["location"].startswith("/dashboard/login")


def test_a_wrong_password_gets_the_generic_refusal(keystone_app: App, keystone: Keystone) -> None:
    app = keystone_app()
    pat = keystone.account("pat")
    for password, project in (("wrong", ""), ("", "no-such-project")):
        _, answer = post_login(app, pat, password, project)
        assert answer.status_code == 401 and GENERIC_REFUSAL in answer.text
        assert f"{COOKIE}=" not in answer.headers.get("set-cookie", "")


def test_keystone_unreachable_at_login_is_a_message_not_a_500(keystone_app: App, keystone: Keystone) -> None:
    relay = Relay(keystone.url)
    try:
        app = keystone_app(auth_url=relay.url)
        sam = keystone.account("sam")
        relay.cut()
        _, answer = post_login(app, sam)
        assert answer.status_code == 503, answer.text
        assert 'role="alert"' in answer.text and "cannot be reached to log you in" in answer.text
        assert f"{COOKIE}=" not in answer.headers.get("set-cookie", "")
        relay.restore()
        assert post_login(app, sam)[1].status_code == 303
    finally:
        relay.close()


def test_repeated_wrong_passwords_are_throttled(keystone_app: App, keystone: Keystone) -> None:
    """The embedded identity's failed-login throttle holds for Keystone's passwords too: past it,
    429 with Retry-After, before Keystone is asked (the right password is refused as well)."""
    app = keystone_app()
    reconfigure(app, login_failures_per_user_address=3, login_failures_per_address=5)
    ray, ann = keystone.account("ray"), keystone.account("ann")
    for _ in range(3):
        assert post_login(app, ray, "wrong")[1].status_code == 401
    for password in ("wrong", ray.password):
        _, throttled = post_login(app, ray, password)
        assert throttled.status_code == 429, throttled.text
        assert int(throttled.headers["retry-after"]) >= 1 and "Too many failed logins" in throttled.text
        assert f"{COOKIE}=" not in throttled.headers.get("set-cookie", "")
    # Another user from the same address: its own failures count until the address's limit.
    assert post_login(app, ann)[1].status_code == 303  # a success clears nothing of ray's
    for _ in range(2):
        assert post_login(app, ann, "wrong")[1].status_code == 401
    assert post_login(app, ann)[1].status_code == 429


def test_logout_with_keystone_down_still_ends_the_session(
    keystone_app: App, keystone: Keystone, caplog: pytest.LogCaptureFixture
) -> None:
    relay = Relay(keystone.url)
    try:
        app = keystone_app(auth_url=relay.url)
        lee = keystone.account("lee")
        session = log_in(app, lee)
        token, cookie = session_token(app, session), session.cookies[COOKIE]
        assert session.get("/dashboard/images").status_code == 200  # the token is in the cache now
        relay.cut()
        with caplog.at_level("WARNING"):
            answer = session.post("/dashboard/logout", data={"csrf_token": csrf(session)})
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"
        assert COOKIE not in session.cookies
        assert "could not be revoked at logout" in caplog.text
        # The token is no longer taken from this node's cache: the old cookie gets no page.
        replay = browser(app)
        replay.cookies.set(COOKIE, cookie, path="/dashboard")
        assert replay.get("/dashboard/images").status_code != 200
        assert app.get("/v2/images", headers={"X-Auth-Token": token}).status_code != 200
    finally:
        relay.close()


def test_a_share_refused_while_keystone_is_down_leaves_the_image_private(
    keystone_app: App, keystone: Keystone
) -> None:
    relay = Relay(keystone.url)
    try:
        app = keystone_app(auth_url=relay.url)
        owner, other = keystone.account("vis-owner"), keystone.account("vis-other")
        headers = {"X-Auth-Token": keystone.account_token(owner)}
        made = app.post(
            "/v2/images",
            json={
                "name": "stays-private",
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "private",
            },
            headers=headers,
        ).json()
        session = log_in(app, owner)
        form = {"member": other.project_id, "csrf_token": csrf(session)}  # the token is cached now
        relay.cut()
        refused = session.post(f"/dashboard/images/{made['id']}/members", data=form)
        assert refused.status_code == 503, refused.text
        relay.restore()
        assert app.get(f"/v2/images/{made['id']}", headers=headers).json()["visibility"] == "private"
        assert session.post(f"/dashboard/images/{made['id']}/members", data=form).status_code == 303
        assert app.get(f"/v2/images/{made['id']}", headers=headers).json()["visibility"] == "shared"
    finally:
        relay.close()
