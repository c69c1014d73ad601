"""Regenerate the dashboard screenshots in docs/ (`make screenshots`): starts `spyglass serve --demo`
on a free port with a fresh data directory, shares an image from demo-a with demo-b through the
API, and photographs the main pages in Debian's headless Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent.parent / "docs"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token(url: str, auth: dict[str, str]) -> str:
    domain = {"name": auth["user_domain_name"]}
    user = {"name": auth["username"], "domain": domain, "password": auth["password"]}
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": {"name": auth["project_name"], "domain": domain}},
        }
    }
    answer = httpx.post(f"{url}/identity/v3/auth/tokens", json=body)
    answer.raise_for_status()
    return answer.headers["X-Subject-Token"]


def populate(url: str, clouds: dict[str, Any]) -> str:
    alice = {"X-Auth-Token": token(url, clouds["spyglass-a"]["auth"])}
    bob = {"X-Auth-Token": token(url, clouds["spyglass-b"]["auth"])}
    bob_project = httpx.get(
        f"{url}/identity/v3/auth/tokens", headers={**bob, "X-Subject-Token": bob["X-Auth-Token"]}
    )
    project_b = bob_project.json()["token"]["project"]["id"]
    shared = ""
    for name, size in (
        ("ubuntu-24.04-golden", 3 << 20),
        ("debian-12-base", 2 << 20),
        ("build-agent", 1 << 20),
    ):
        image = httpx.post(
            f"{url}/v2/images",
            headers=alice,
            json={"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "shared"},
        ).json()
        upload = {**alice, "Content-Type": "application/octet-stream"}
        httpx.put(
            f"{url}/v2/images/{image['id']}/file", headers=upload, content=os.urandom(size)
        ).raise_for_status()
        shared = shared or image["id"]
        httpx.post(f"{url}/v2/images/{image['id']}/members", headers=alice, json={"member": project_b})
    httpx.put(f"{url}/v2/images/{shared}/members/{project_b}", headers=bob, json={"status": "accepted"})
    httpx.get(f"{url}/v2/images/{shared}/file", headers=bob).raise_for_status()
    return shared


def log_in(browser: Any, url: str, auth: dict[str, str]) -> Any:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(f"{url}/dashboard/login")
    page.get_by_label("User name").fill(auth["username"])
    page.get_by_label("Password").fill(auth["password"])
    page.get_by_label("Domain", exact=True).fill(auth["user_domain_name"])
    page.get_by_label("Project", exact=True).fill(auth["project_name"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/images")
    return page


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "SPYGLASS_ADMIN_PASSWORD": "screenshots", "SPYGLASS_PROTECT_CONSUMERS": "true"}
        server = subprocess.Popen(
            [str(BIN / "spyglass"), "--data-dir", f"{tmp}/data", "serve", "--port", str(port), "--demo"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(url)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            clouds = yaml.safe_load(Path(f"{tmp}/data/clouds.yaml").read_text())["clouds"]
            shared = populate(url, clouds)
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                alice = log_in(browser, url, clouds["spyglass-a"]["auth"])
                alice.screenshot(path=DOCS / "dashboard-images.png", full_page=True)
                alice.goto(f"{url}/dashboard/images/{shared}")
                alice.screenshot(path=DOCS / "dashboard-image.png", full_page=True)
                alice.get_by_role("button", name="Remove").first.click()
                alice.screenshot(path=DOCS / "dashboard-confirm.png", full_page=True)
                bob = log_in(browser, url, clouds["spyglass-b"]["auth"])
                bob.goto(f"{url}/dashboard/invitations")
                bob.screenshot(path=DOCS / "dashboard-invitations.png", full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
    print("wrote", ", ".join(sorted(p.name for p in DOCS.glob("dashboard-*.png"))))


if __name__ == "__main__":
    main()
