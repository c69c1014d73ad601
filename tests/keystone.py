"""The real Keystone that scripts/ensure-keystone.sh installs and starts, for the tests of
`identity = "keystone"`, and the admin calls the tests make to it (domains, projects, users, tokens).

The `keystone` fixture is session-scoped; it fails, never skips, when Keystone cannot start.
Every test makes its own domains, projects and users, with names unique to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "spyglass-keystone-admin"
SERVICE_PASSWORD = "spyglass-service-password"


def _password_auth(user: str, password: str, domain: str, project: str | None, project_domain: str) -> Any:
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": user, "domain": {"name": domain}, "password": password}},
        }
    }
    if project is not None:
        auth["scope"] = {"project": {"name": project, "domain": {"name": project_domain}}}
    return {"auth": auth}


@dataclass(frozen=True)
class Account:
    user_id: str
    user_name: str
    password: str
    domain_name: str
    project_id: str
    project_name: str


class Keystone:
    """Admin access to the test Keystone."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=30)
        self._admin_token = ("", 0.0)

    def token(
        self, user: str, password: str, domain: str, project: str | None, project_domain: str = ""
    ) -> str:
        body = _password_auth(user, password, domain, project, project_domain or domain)
        response = self.http.post(f"{self.url}/auth/tokens", json=body)
        response.raise_for_status()
        return response.headers["X-Subject-Token"]

    def admin_token(self) -> str:
        # Renewed after 20 s: the test Keystone's tokens last a minute.
        token, issued = self._admin_token
        if time.monotonic() - issued > 20:
            token = self.token("admin", ADMIN_PASSWORD, "Default", "admin")
            self._admin_token = (token, time.monotonic())
        return token

    def call(self, method: str, path: str, json: Any = None, **headers: str) -> httpx.Response:
        response = self.http.request(
            method, self.url + path, json=json, headers={"X-Auth-Token": self.admin_token(), **headers}
        )
        response.raise_for_status()
        return response

    def role_id(self, name: str) -> str:
        found = self.call("GET", f"/roles?name={name}").json()["roles"]
        if found:
            return str(found[0]["id"])
        return str(self.call("POST", "/roles", {"role": {"name": name}}).json()["role"]["id"])

    def create_domain(self, prefix: str) -> dict[str, Any]:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        domain: dict[str, Any] = self.call("POST", "/domains", {"domain": {"name": name}}).json()["domain"]
        return domain

    def create_project(self, prefix: str, domain_id: str = "default") -> dict[str, Any]:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = {"project": {"name": name, "domain_id": domain_id}}
        project: dict[str, Any] = self.call("POST", "/projects", body).json()["project"]
        return project

    def create_user(self, prefix: str, domain_id: str = "default") -> dict[str, Any]:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = {"user": {"name": name, "domain_id": domain_id, "password": name + "-pw"}}
        user: dict[str, Any] = self.call("POST", "/users", body).json()["user"]
        return user

    def grant(self, user_id: str, project_id: str, role: str) -> None:
        self.call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{self.role_id(role)}")

    def account(self, prefix: str, role: str = "member", domain_id: str = "default") -> Account:
        """A new project with a new user holding `role` on it, in the domain given."""
        domain_name = self.call("GET", f"/domains/{domain_id}").json()["domain"]["name"]
        project = self.create_project(prefix, domain_id)
        user = self.create_user(prefix, domain_id)
        self.grant(user["id"], project["id"], role)
        password = user["name"] + "-pw"
        return Account(user["id"], user["name"], password, domain_name, project["id"], project["name"])

    def account_token(self, account: Account) -> str:
        return self.token(account.user_name, account.password, account.domain_name, account.project_name)

    def revoke(self, token: str) -> None:
        self.call("DELETE", "/auth/tokens", **{"X-Subject-Token": token})

    def set_project_enabled(self, project_id: str, enabled: bool) -> None:
        self.call("PATCH", f"/projects/{project_id}", {"project": {"enabled": enabled}})

    def delete_project(self, project_id: str) -> None:
        self.call("DELETE", f"/projects/{project_id}")

    def identity_in_region(self, region: str) -> None:
        """Keystone's own endpoints in one more region, so that a client working in it finds them."""
        if self.http.get(
            f"{self.url}/regions/{region}", headers={"X-Auth-Token": self.admin_token()}
        ).is_error:
            self.call("POST", "/regions", {"region": {"id": region}})
        service = self.call("GET", "/services?type=identity").json()["services"][0]["id"]
        for interface in ("public", "internal", "admin"):
            endpoint = {"service_id": service, "interface": interface, "region_id": region, "url": self.url}
            self.call("POST", "/endpoints", {"endpoint": endpoint})

    def image_service_id(self) -> str:
        """The `image` service (as `spyglass keystone register` makes it), made once however many
        test workers ask at the same time."""
        lock = Path(tempfile.gettempdir()) / "spyglass-keystone-image-service.lock"
        with lock.open("w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            found = self.call("GET", "/services?type=image").json()["services"]
            if found:
                return str(found[0]["id"])
            body = {"service": {"type": "image", "name": "glance", "description": "Spyglass image service"}}
            return str(self.call("POST", "/services", body).json()["service"]["id"])

    def create_region(self, prefix: str) -> str:
        region = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.call("POST", "/regions", {"region": {"id": region}})
        return region

    def admin_environment(self) -> dict[str, str]:
        """OS_* variables of Keystone's admin, for the `openstack` CLI."""
        return {
            "OS_AUTH_URL": self.url,
            "OS_USERNAME": "admin",
            "OS_PASSWORD": ADMIN_PASSWORD,
            "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
        }

    def service_user(self) -> Account:
        """Spyglass's own service user, as an operator would make it: project `service`, roles
        `service` (for service tokens' checks) and `reader` on the system (to read projects)."""
        existing = self.call("GET", "/users?name=spyglass").json()["users"]
        if existing:
            user_id = existing[0]["id"]
        else:
            body = {"user": {"name": "spyglass", "domain_id": "default", "password": SERVICE_PASSWORD}}
            user_id = self.call("POST", "/users", body).json()["user"]["id"]
        projects = self.call("GET", "/projects?name=service&domain_id=default").json()["projects"]
        if projects:
            project_id = projects[0]["id"]
        else:
            body = {"project": {"name": "service", "domain_id": "default"}}
            project_id = self.call("POST", "/projects", body).json()["project"]["id"]
        self.grant(user_id, project_id, "service")
        self.call("PUT", f"/system/users/{user_id}/roles/{self.role_id('reader')}")
        return Account(user_id, "spyglass", SERVICE_PASSWORD, "Default", project_id, "service")

    def spyglass_config(self, path: Path, top: str = "", **changes: Any) -> Path:
        """Write a Spyglass configuration file that validates against this Keystone: `top` holds
        more top-level settings (TOML lines), `changes` change the [keystone_authtoken] table."""
        options = self.authtoken_options(**changes)
        path.write_text(
            'identity = "keystone"\n'
            + top
            + "[keystone_authtoken]\n"
            + "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in options.items())
        )
        return path

    def authtoken_options(self, **changes: Any) -> dict[str, Any]:
        """The [keystone_authtoken] table of a Spyglass that validates against this Keystone."""
        self.service_user()
        return {
            "auth_url": self.url,
            "www_authenticate_uri": self.url,
            "username": "spyglass",
            "password": SERVICE_PASSWORD,
            "project_name": "service",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            **changes,
        }


def start_keystone(**env: str) -> str:
    """Keystone's URL, started by the project's own script; a failure fails the tests. `env`: the
    script's variables, for a Keystone of a test's own (KEYSTONE_STATE_DIR, ...)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "ensure-keystone.sh")],
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, **env},
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/ensure-keystone.sh failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


def stop_keystone(state_dir: Path) -> None:
    """Stop the Keystone of a test's own (started with KEYSTONE_STATE_DIR=state_dir)."""
    subprocess.run(
        [str(ROOT / "scripts" / "ensure-keystone.sh"), "stop"],
        capture_output=True,
        timeout=60,
        env={**os.environ, "KEYSTONE_STATE_DIR": str(state_dir)},
        check=True,
    )


@pytest.fixture(scope="session")
def keystone() -> Keystone:
    return Keystone(start_keystone())


class Relay:
    """A TCP relay in front of Keystone that a test can cut (Keystone down) or slow down, so that
    one test's outage does not reach the other tests sharing the same Keystone."""

    def __init__(self, target_url: str) -> None:
        parsed = httpx.URL(target_url)
        self.target = (parsed.host, parsed.port or 80)
        self.path = parsed.path
        self.delay = 0.0
        self.up = True
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._connections: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def cut(self) -> None:
        """Keystone down: open connections drop and new ones are refused at once."""
        self.up = False
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.close()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        self._connections += [client, upstream]
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while self.up and (chunk := source.recv(65536)):
                # Slow: every chunk is held, on connections already open too.
                time.sleep(self.delay)
                sink.sendall(chunk)
        for conn in (source, sink):
            with contextlib.suppress(OSError):
                conn.close()
