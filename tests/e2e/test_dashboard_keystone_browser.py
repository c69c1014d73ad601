"""The dashboard of a `spyglass serve` with identity = "keystone", in a real headless Chromium: a
Keystone user logs in with the Keystone password and sees the project's images."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.keystone import Keystone, keystone

__all__ = ["keystone"]

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keystone: Keystone) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("dashboard-keystone")
    config = keystone.spyglass_config(base / "spyglass.toml", http_connect_timeout=60)
    running = start_server(base / "data", env={"SPYGLASS_CONFIG": str(config)})
    yield running
    stop_server(running)


def test_a_keystone_user_logs_in_and_sees_the_projects_images(server: Server, keystone: Keystone) -> None:
    kay = keystone.account("kay", domain_id=keystone.create_domain("dash")["id"])
    body = {"name": "kays-image", "disk_format": "raw", "container_format": "bare"}
    made = httpx.post(
        f"{server.url}/v2/images",
        json=body,
        headers={"X-Auth-Token": keystone.account_token(kay)},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    with playwright_sync.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page: Any = browser.new_page()
            page.goto(f"{server.url}/dashboard/")
            page.get_by_label("User name").fill(kay.user_name)
            page.get_by_label("Password").fill(kay.password)
            page.get_by_label("Domain", exact=True).fill(kay.domain_name)
            page.get_by_label("Project", exact=True).fill(kay.project_name)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/dashboard/images", timeout=60000)
            assert page.get_by_role("link", name="kays-image").is_visible()
            assert kay.user_name in page.locator("label[for=project-switch]").inner_text()
        finally:
            browser.close()
