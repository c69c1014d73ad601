"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against `spyglass serve`:
the sharing workflow entirely in the browser, and the session's security."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import Server, start_server, stop_server

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
A, B = "spyglass-a", "spyglass-b"
NO_IMAGE = "00000000-0000-4000-8000-000000000000"
DATA = hashlib.sha512(b"dashboard").digest() * 16384  # 1 MiB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the recycle bin on, and webhooks allowed to reach this machine."""
    env = {"SPYGLASS_RECYCLE_RETENTION_DAYS": "7", "SPYGLASS_WEB_DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.0/8"}
    running = start_server(tmp_path_factory.mktemp("dashboard") / "data", env=env)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def credentials(server: Server, cloud: str) -> dict[str, str]:
    auth: dict[str, str] = yaml.safe_load(server.clouds_yaml.read_text())["clouds"][cloud]["auth"]
    return auth


def log_in(browser: Any, server: Server, cloud: str, *, javascript: bool = True) -> Any:
    auth = credentials(server, cloud)
    page = browser.new_context(accept_downloads=True, java_script_enabled=javascript).new_page()
    page.goto(f"{server.url}/dashboard/")
    page.get_by_label("User name").fill(auth["username"])
    page.get_by_label("Password").fill(auth["password"])
    page.get_by_label("Domain", exact=True).fill(auth["user_domain_name"])
    page.get_by_label("Project", exact=True).fill(auth["project_name"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/images")
    return page


def test_the_sharing_workflow_in_the_browser(browser: Any, server: Server, tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(DATA)
    alice = log_in(browser, server, A)
    alice.get_by_label("Name", exact=True).last.fill("browser-web")
    alice.get_by_label("File").set_input_files(str(disk))
    alice.get_by_role("button", name="Upload").click()
    alice.wait_for_url("**/dashboard/images/*?notice=Uploaded.")
    assert alice.locator("td.checksum").inner_text() == hashlib.md5(DATA).hexdigest()
    assert alice.locator("td.os_hash_value").inner_text() == hashlib.sha512(DATA).hexdigest()
    image_url = alice.url.split("?")[0]
    image_id = image_url.rsplit("/", 1)[1]

    # Share by name: project demo-b in domain partners.
    alice.get_by_label("Project name or id").fill("demo-b")
    alice.get_by_label("Domain (when giving a name)").fill("partners")
    alice.get_by_role("button", name="Share").click()
    project_b = server.project_id(B)
    assert alice.get_by_role("cell", name=project_b).is_visible()

    bob = log_in(browser, server, B)
    assert bob.locator("#pending-count").inner_text() == "1"
    bob.get_by_role("link", name="Invitations").click()
    bob.get_by_role("button", name="Accept").click()
    assert bob.locator("#pending-count").inner_text() == "0"
    bob.get_by_role("link", name="Shared with me").click()
    bob.get_by_role("link", name="browser-web").click()
    with bob.expect_download() as downloading:
        bob.get_by_role("link", name="Download").click()
    saved = tmp_path / "bob.raw"
    downloading.value.save_as(saved)
    assert saved.read_bytes() == DATA
    bob.get_by_label("Name of the copy").fill("bobs-web")
    bob.get_by_role("button", name="Copy").click()
    bob.wait_for_url("**notice=Copied*")
    bobs_copy = bob.url.split("?")[0]

    # Alice sees bob's project among the users, protects her consumers, and is warned before revoking.
    alice.goto(image_url)
    assert alice.locator("section", has_text="Who uses it").get_by_role("cell", name=project_b).is_visible()
    server.openstack(A, "image", "set", "--property", "spyglass_protect_consumers=true", image_id)
    alice.goto(image_url)
    alice.get_by_role("button", name="Remove").click()
    warning = alice.get_by_role("alert")
    assert project_b in warning.inner_text() and "cut off" in alice.locator("h1").inner_text()
    alice.get_by_role("button", name="Yes, remove project").click()
    alice.wait_for_url("**notice=Removed*")
    bob.goto(image_url)
    assert "404" in bob.locator("h1").inner_text()
    # Bob's copy is his own: it still downloads.
    bob.goto(bobs_copy)
    with bob.expect_download() as downloading:
        bob.get_by_role("link", name="Download").click()
    downloading.value.save_as(saved)
    assert saved.read_bytes() == DATA


def test_an_upload_without_javascript(browser: Any, server: Server, tmp_path: Path) -> None:
    """No progress bar, but the file still goes: posted with the form, streamed into the image."""
    data = hashlib.sha512(b"no javascript").digest() * 8192  # 512 KiB
    disk = tmp_path / "no-js.raw"
    disk.write_bytes(data)
    alice = log_in(browser, server, A, javascript=False)
    alice.get_by_label("Name", exact=True).last.fill("no-js-upload")
    alice.get_by_label("File").set_input_files(str(disk))
    alice.get_by_role("button", name="Upload").click()
    alice.wait_for_url("**/dashboard/images/*?notice=Uploaded.")
    assert alice.locator("td.checksum").inner_text() == hashlib.md5(data).hexdigest()
    assert alice.locator("td.os_hash_value").inner_text() == hashlib.sha512(data).hexdigest()
    with alice.expect_download() as downloading:
        alice.get_by_role("link", name="Download").click()
    saved = tmp_path / "downloaded.raw"
    downloading.value.save_as(saved)
    assert saved.read_bytes() == data


def test_recycle_bin_and_webhooks(browser: Any, server: Server) -> None:
    image_id = server.create_image(A, "binned")["id"]
    alice = log_in(browser, server, A)
    alice.goto(f"{server.url}/dashboard/images/{image_id}")
    alice.once("dialog", lambda dialog: dialog.accept())
    alice.get_by_role("button", name="Delete image").click()
    alice.get_by_role("link", name="Recycle bin").click()
    alice.get_by_role("row", name="binned").get_by_role("button", name="Restore").click()
    alice.wait_for_url("**notice=Restored*")
    assert (
        alice.locator("td.status").inner_text() == "active"
    )  # the status it had (openstack uploads 0 bytes)

    alice.get_by_role("link", name="Webhooks").click()
    alice.get_by_label("URL to notify of sharing events").fill("http://127.0.0.1:9/hook")
    alice.get_by_role("button", name="Add webhook").click()
    secret = alice.locator("#webhook-secret").inner_text()
    assert len(secret) >= 16
    alice.get_by_role("link", name="Webhooks").click()
    assert secret not in alice.content() and "http://127.0.0.1:9/hook" in alice.content()
    alice.get_by_role("button", name="Delete").click()
    assert "No webhooks." in alice.content()


def test_forms_need_the_csrf_token_and_the_cookie_is_locked_down(browser: Any, server: Server) -> None:
    alice = log_in(browser, server, A)
    cookie = next(c for c in alice.context.cookies() if c["name"] == "spyglass_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    jar = {"spyglass_session": cookie["value"]}
    with httpx.Client(base_url=server.url, cookies=jar) as raw:
        assert raw.get("/dashboard/images").status_code == 200
        for form in ({}, {"csrf_token": "0" * 64}):
            refused = raw.post("/dashboard/images", data={"name": "forged", **form})
            assert refused.status_code == 403
        assert (
            raw.put("/dashboard/images/00000000-0000-4000-8000-000000000000/file", content=b"x").status_code
            == 403
        )
    assert "forged" not in server.openstack(A, "image", "list", "-f", "value", "-c", "Name").stdout


def test_a_private_image_is_a_404_page_and_a_logged_out_session_is_dead(browser: Any, server: Server) -> None:
    image_id = server.create_image(A, "alice-private")["id"]
    bob = log_in(browser, server, B)
    response = bob.goto(f"{server.url}/dashboard/images/{image_id}")
    assert response.status == 404 and "alice-private" not in bob.content()

    cookie = next(c for c in bob.context.cookies() if c["name"] == "spyglass_session")
    bob.get_by_role("button", name="Log out").click()
    bob.wait_for_url("**/dashboard/login")
    with httpx.Client(base_url=server.url, cookies={"spyglass_session": cookie["value"]}) as raw:
        again = raw.get("/dashboard/images")
    assert again.status_code == 303 and again.headers["location"].startswith("/dashboard/login")


AXE = Path(
    subprocess.run(
        [str(Path(__file__).resolve().parents[2] / "scripts" / "ensure-axe.sh")],
        capture_output=True,
        text=True,
    ).stdout.strip()
    or "/nonexistent/axe.min.js"
)


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_every_page_passes_axe_core(browser: Any, server: Server) -> None:
    assert AXE.is_file(), "scripts/ensure-axe.sh did not provide axe-core"
    project_b = server.project_id(B)
    image_id = server.create_image(A, "checked", "--shared")["id"]
    server.openstack(A, "image", "add", "project", image_id, project_b)
    login = browser.new_context().new_page()
    login.goto(f"{server.url}/dashboard/login")
    pages = {"login": serious_violations(login)}
    alice = log_in(browser, server, A)
    urls = {
        "images": "/dashboard/images",
        "shared": "/dashboard/images?view=shared",
        "image": f"/dashboard/images/{image_id}",
        "bin": "/dashboard/recycle-bin",
        "webhooks": "/dashboard/webhooks",
        "not found": "/dashboard/images/00000000-0000-4000-8000-000000000000",
    }
    for name, url in urls.items():
        alice.goto(server.url + url)
        pages[name] = serious_violations(alice)
    bob = log_in(browser, server, B)
    bob.goto(f"{server.url}/dashboard/invitations")
    pages["invitations"] = serious_violations(bob)
    server.openstack(A, "image", "set", "--property", "spyglass_protect_consumers=true", image_id)
    assert {name: found for name, found in pages.items() if found} == {}
