"""The dashboard's pages in-process, on SQLite and PostgreSQL (spyglass.api.dashboard): the session
cookie, CSRF, and that a page never shows or does more than the API lets the same user."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from spyglass.api.dashboard import streamed_form
from spyglass.api.dashboard.session import COOKIE
from spyglass.errors import Invalid
from tests.api.helpers import active, create
from tests.conftest import PASSWORD, PEOPLE, Callers, World, reconfigure

BASE = "http://127.0.0.1:9292"


def browser(client: TestClient) -> TestClient:
    """Another client of the same application, with a cookie jar of its own."""
    return TestClient(client.app, base_url=BASE, follow_redirects=False)


def login_form(session: TestClient) -> dict[str, str]:
    """The hidden fields of the login form, as a browser that opened it would send them."""
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', session.get("/dashboard/login").text)
    assert found is not None
    return {"csrf_token": found.group(1)}


def log_in(client: TestClient, user: str, next_page: str = "") -> TestClient:
    project, domain, _ = PEOPLE[user]
    session = browser(client)
    form = {"username": user, "password": PASSWORD, "domain": domain, "project": project, "next": next_page}
    answer = session.post("/dashboard/login", data={**form, **login_form(session)})
    assert answer.status_code == 303, answer.text
    return session


def csrf(session: TestClient, page: str = "/dashboard/images") -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', session.get(page).text)
    assert found is not None
    return found.group(1)


def test_logging_in_sets_a_locked_down_cookie_and_goes_where_asked(client: TestClient) -> None:
    session = browser(client)
    form = {"username": "alice", "password": PASSWORD, "domain": "Default", "project": "alpha"}
    form.update(login_form(session))
    answer = session.post("/dashboard/login", data={**form, "next": "/dashboard/invitations"})
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/invitations"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/dashboard" in cookie and "Secure" not in cookie  # http here; https sets Secure
    for elsewhere in ("//evil.example/", "https://evil.example/", "/v2/images"):
        answer = session.post("/dashboard/login", data={**form, "next": elsewhere})
        assert answer.headers.get("location") == "/dashboard/images", answer.text


def test_a_wrong_password_shows_the_form_again_without_a_session(client: TestClient) -> None:
    session = browser(client)
    form = {"username": "alice", "password": "wrong", "domain": "Default", "project": "alpha"}
    answer = session.post("/dashboard/login", data={**form, **login_form(session)})
    assert answer.status_code == 401 and 'role="alert"' in answer.text
    assert f"{COOKIE}=" not in answer.headers.get("set-cookie", "")
    assert session.get("/dashboard/images").headers["location"].startswith("/dashboard/login")


def test_a_bare_or_forged_cookie_is_no_session(client: TestClient, world: World) -> None:
    for value in (world.tokens["alice"], "sealed:v1:AAAA", ""):
        session = browser(client)
        session.cookies.set(COOKIE, value, path="/dashboard")
        assert session.get("/dashboard/images").status_code == 303


def test_forms_without_the_csrf_token_change_nothing(client: TestClient, api: Callers) -> None:
    session = log_in(client, "alice")
    for token in (None, "0" * 64, csrf(log_in(client, "bob"))):
        form = {"name": "forged", **({"csrf_token": token} if token else {})}
        assert session.post("/dashboard/images", data=form).status_code == 403
    assert api.alice.get("/v2/images?name=forged").json()["images"] == []
    made = session.post("/dashboard/images", data={"name": "made", "csrf_token": csrf(session)})
    assert made.status_code == 303
    assert [i["name"] for i in api.alice.get("/v2/images?name=made").json()["images"]] == ["made"]


def test_a_page_shows_no_more_than_the_api(client: TestClient, api: Callers, world: World) -> None:
    private = active(api.alice, name="alice-private")  # Glance's default visibility: shared, no members
    bob = log_in(client, "bob")
    for path in ("", "/file"):
        answer = bob.get(f"/dashboard/images/{private['id']}{path}")
        assert answer.status_code == 404 and "alice-private" not in answer.text
    listed = bob.get("/dashboard/images?view=shared").text + bob.get("/dashboard/images?view=community").text
    assert "alice-private" not in listed
    # A reader of alice's project sees the image but may not share it, as through the API.
    rita = log_in(client, "rita")
    assert "alice-private" in rita.get(f"/dashboard/images/{private['id']}").text
    shared = rita.post(
        f"/dashboard/images/{private['id']}/members",
        data={"member": world.projects["beta"], "csrf_token": csrf(rita)},
    )
    assert shared.status_code == 403
    assert api.alice.get(f"/v2/images/{private['id']}/members").json()["members"] == []


def test_sharing_by_name_accepting_and_downloading(client: TestClient, api: Callers, world: World) -> None:
    image = active(api.alice, name="web", data=b"shared bytes")
    alice = log_in(client, "alice")
    form = {"member": "beta", "domain": "Default", "csrf_token": csrf(alice)}
    assert alice.post(f"/dashboard/images/{image['id']}/members", data=form).status_code == 303
    unknown = alice.post(f"/dashboard/images/{image['id']}/members", data={**form, "member": "nowhere"})
    assert unknown.status_code == 400 and "No project named" in unknown.text
    bob = log_in(client, "bob")
    assert 'id="pending-count" aria-label="1 pending">1<' in bob.get("/dashboard/invitations").text
    accepted = bob.post(f"/dashboard/invitations/{image['id']}/accept", data={"csrf_token": csrf(bob)})
    assert accepted.status_code == 303
    assert (
        api.bob.get(f"/v2/images/{image['id']}/members/{world.projects['beta']}").json()["status"]
        == "accepted"
    )
    assert bob.get(f"/dashboard/images/{image['id']}/file").content == b"shared bytes"
    assert "web" in bob.get("/dashboard/images?view=shared").text


def test_the_list_pages_through_the_catalogue(client: TestClient, api: Callers) -> None:
    for n in range(27):
        create(api.alice, name=f"img-{n:02d}")
    alice = log_in(client, "alice")
    first = alice.get("/dashboard/images").text
    link = re.search(r'href="/dashboard/images(\?[^"]+)" rel="next"', first)
    assert link is not None and first.count("/dashboard/images/") == 25
    second = alice.get("/dashboard/images" + link.group(1).replace("&amp;", "&")).text
    assert second.count('<td><a href="/dashboard/images/') == 2 and 'rel="next"' not in second


def test_logging_out_revokes_the_token(client: TestClient) -> None:
    alice = log_in(client, "alice")
    cookie = alice.cookies.get(COOKIE)
    assert alice.post("/dashboard/logout", data={"csrf_token": csrf(alice)}).status_code == 303
    again = browser(client)
    again.cookies.set(COOKIE, cookie or "", path="/dashboard")
    assert again.get("/dashboard/images").status_code == 303


def test_assets_are_cached_and_the_dashboard_can_be_turned_off(client: TestClient) -> None:
    css = client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and "max-age" in css.headers["cache-control"]
    assert client.get("/dashboard/static/../../settings.py").status_code == 404
    reconfigure(client, dashboard=False)
    # Routes are wired at start-up: a restart with dashboard = false serves none of them.
    from spyglass.api.app import create_app

    app = create_app(client.app.state.spyglass.settings, db=client.app.state.spyglass.db)  # type: ignore[attr-defined]
    assert TestClient(app, base_url=BASE).get("/dashboard/login").status_code == 404


@pytest.mark.parametrize("view", ["mine", "shared", "community", "public"])
def test_each_view_renders(client: TestClient, view: str) -> None:
    assert log_in(client, "alice").get(f"/dashboard/images?view={view}").status_code == 200


def test_a_login_form_posted_from_elsewhere_logs_nobody_in(client: TestClient) -> None:
    """Login CSRF: a page of another site cannot post the form with its own account."""
    form = {"username": "alice", "password": PASSWORD, "domain": "Default", "project": "alpha"}
    stranger = browser(client)
    other = browser(client)
    for extra in ({}, {"csrf_token": "0" * 64}, login_form(other)):
        answer = stranger.post("/dashboard/login", data={**form, **extra})
        assert answer.status_code == 403 and COOKIE not in answer.headers.get("set-cookie", "")


# ---- uploading without JavaScript: the file comes with the form, streamed into the API's upload ----

BOUNDARY = "spyglass-form-boundary"
NO_JS_DATA = hashlib.sha512(b"no javascript").digest() * 2048  # 128 KiB


def multipart(
    fields: list[tuple[str, str]],
    data: bytes,
    *,
    file_name: str = "disk.raw",
    file_first: bool = False,
    cut: int = 0,
) -> bytes:
    """A form body as a browser sends it (fields in the form's order, the file last unless
    `file_first`; file name "" for an empty file input), cut short by `cut` bytes when asked."""

    def part(name: str, value: bytes, file_name: str | None = None) -> bytes:
        disposition = f'form-data; name="{name}"'
        if file_name is not None:
            disposition += f'; filename="{file_name}"'
        kind = "Content-Type: application/octet-stream\r\n" if file_name is not None else ""
        return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{kind}\r\n".encode() + value + b"\r\n"

    parts = [part(name, value.encode()) for name, value in fields]
    file_part = part("file", data, file_name)
    parts = [file_part, *parts] if file_first else [*parts, file_part]
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return body[: len(body) - cut] if cut else body


def post_form(session: TestClient, body: bytes) -> Any:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return session.post("/dashboard/images", content=body, headers=headers)


def test_an_upload_without_javascript_sends_the_file_into_the_image(client: TestClient, api: Callers) -> None:
    alice = log_in(client, "alice")
    fields = [("csrf_token", csrf(alice)), ("name", "no-js"), ("disk_format", "raw")]
    answer = post_form(alice, multipart(fields, NO_JS_DATA))
    assert answer.status_code == 303 and answer.headers["location"].endswith("?notice=Uploaded."), answer.text
    page = alice.get(answer.headers["location"]).text
    assert hashlib.md5(NO_JS_DATA).hexdigest() in page
    assert hashlib.sha512(NO_JS_DATA).hexdigest() in page
    image_id = answer.headers["location"].split("?")[0].rsplit("/", 1)[1]
    assert api.alice.get(f"/v2/images/{image_id}/file").content == NO_JS_DATA
    # The form with its file input left empty only creates the image, as before.
    empty = post_form(alice, multipart([*fields[:1], ("name", "no-file")], b"", file_name=""))
    assert empty.status_code == 303 and "notice" not in empty.headers["location"]
    assert api.alice.get("/v2/images?name=no-file").json()["images"][0]["status"] == "queued"


def test_an_upload_form_without_its_csrf_token_before_the_file_is_refused(
    client: TestClient, api: Callers
) -> None:
    alice = log_in(client, "alice")
    for fields in ([], [("csrf_token", "0" * 64)], [("csrf_token", csrf(log_in(client, "bob")))]):
        refused = post_form(alice, multipart([*fields, ("name", "forged")], NO_JS_DATA))
        assert refused.status_code == 403
    # The right token after the file comes too late: the file would have to be read to find it.
    late = multipart([("csrf_token", csrf(alice)), ("name", "forged")], NO_JS_DATA, file_first=True)
    assert post_form(alice, late).status_code == 403
    assert api.alice.get("/v2/images?name=forged").json()["images"] == []


def test_a_truncated_upload_leaves_no_active_image(client: TestClient, api: Callers) -> None:
    alice = log_in(client, "alice")
    fields = [("csrf_token", csrf(alice)), ("name", "cut-short")]
    # The body stops in the middle of the file: no closing boundary ever comes.
    answer = post_form(alice, multipart(fields, NO_JS_DATA, cut=len(NO_JS_DATA) // 2))
    # The image was made before its bytes came: its page says what failed, and offers to delete it.
    [image] = api.alice.get("/v2/images?name=cut-short").json()["images"]
    assert image["status"] == "queued" and image["size"] is None and image["checksum"] is None
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(f"/dashboard/images/{image['id']}?notice=")
    page = alice.get(answer.headers["location"]).text
    assert "ended before the whole file arrived" in page and "upload its file again or delete it" in page
    assert f'action="/dashboard/images/{image["id"]}/delete"' in page
    garbled = post_form(alice, b"--" + BOUNDARY.encode() + b"\r\nno headers at all")
    assert garbled.status_code == 400


def test_an_upload_past_the_rate_makes_no_image(client: TestClient, api: Callers) -> None:
    reconfigure(client, rate_limit_uploads=1)
    alice = log_in(client, "alice")
    first = post_form(alice, multipart([("csrf_token", csrf(alice)), ("name", "first")], NO_JS_DATA))
    assert first.status_code == 303 and first.headers["location"].endswith("?notice=Uploaded.")
    # The windows are fixed: of two more uploads at least one falls in a window already used.
    answers = {
        name: post_form(alice, multipart([("csrf_token", csrf(alice)), ("name", name)], NO_JS_DATA))
        for name in ("second", "third")
    }
    refused = [name for name, answer in answers.items() if answer.status_code == 429]
    assert refused, {name: answer.status_code for name, answer in answers.items()}
    assert all("Too many uploads" in answers[name].text for name in refused)
    # Refused before the image was made: no empty image is left in the list.
    for name in refused:
        assert api.alice.get(f"/v2/images?name={name}").json()["images"] == []


def field_part(name: str, value: bytes = b"") -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"


def parse_form(chunks: AsyncIterator[bytes]) -> streamed_form.StreamedForm:
    return asyncio.run(streamed_form.read_body(f"multipart/form-data; boundary={BOUNDARY}", chunks))


def test_a_huge_form_field_is_refused_as_it_arrives() -> None:
    """The field is counted chunk by chunk: the parser stops reading soon after the limit, holding
    no more than it, however much more the client would send."""
    chunk, chunks = b"x" * 65536, 256  # 16 MiB if it were read to its end
    taken = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal taken
        # A token, then a field whose value never ends.
        yield field_part("csrf_token", b"0" * 64) + field_part("name")[:-2]
        for _ in range(chunks):
            taken += 1
            yield chunk

    with pytest.raises(Invalid, match="fields are too large"):
        parse_form(body())
    assert taken <= streamed_form.FIELDS_MAX_BYTES // len(chunk) + 1


def test_a_form_of_many_empty_fields_is_refused() -> None:
    taken = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal taken
        for _ in range(100_000):
            taken += 1
            yield field_part("")

    with pytest.raises(Invalid, match="too many fields"):
        parse_form(body())
    assert taken <= streamed_form.FIELDS_MAX_COUNT + 2
    # A form with its handful of fields is still read.
    fields = [field_part(name, b"v") for name in ("csrf_token", "name", "disk_format", "container_format")]

    async def usual() -> AsyncIterator[bytes]:
        yield b"".join(fields) + f"--{BOUNDARY}--\r\n".encode()

    assert parse_form(usual()).fields["container_format"] == "v"


def test_oversized_or_crowded_forms_are_refused_over_http(client: TestClient, api: Callers) -> None:
    alice = log_in(client, "alice")
    token = csrf(alice)
    huge = multipart(
        [("csrf_token", token), ("name", "x" * (streamed_form.FIELDS_MAX_BYTES + 1))], NO_JS_DATA
    )
    answer = post_form(alice, huge)
    assert answer.status_code == 400 and "too large" in answer.text
    crowded = multipart([("csrf_token", token), *[("", "")] * 100, ("name", "crowded")], NO_JS_DATA)
    answer = post_form(alice, crowded)
    assert answer.status_code == 400 and "too many fields" in answer.text
    assert api.alice.get("/v2/images?name=crowded").json()["images"] == []


def test_a_refused_share_leaves_the_visibility_as_it_was(
    client: TestClient, api: Callers, world: World
) -> None:
    image = active(api.alice, name="kept-private", visibility="private")
    alice = log_in(client, "alice")
    for member in ("no-such-project", "p" * 300):
        refused = alice.post(
            f"/dashboard/images/{image['id']}/members", data={"member": member, "csrf_token": csrf(alice)}
        )
        assert refused.status_code == 400, refused.text
        assert api.alice.get(f"/v2/images/{image['id']}").json()["visibility"] == "private"
    # A refused rate too: checked before anything changes.
    reconfigure(client, rate_limit_member_adds=1)
    beta = world.projects["beta"]
    form = {"member": beta, "csrf_token": csrf(alice)}
    assert alice.post(f"/dashboard/images/{image['id']}/members", data=form).status_code == 303
    assert api.alice.get(f"/v2/images/{image['id']}").json()["visibility"] == "shared"
    other = active(api.alice, name="other-private", visibility="private")
    limited = alice.post(f"/dashboard/images/{other['id']}/members", data=form)
    assert limited.status_code == 429
    assert api.alice.get(f"/v2/images/{other['id']}").json()["visibility"] == "private"
