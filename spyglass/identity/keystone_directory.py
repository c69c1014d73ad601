"""What Spyglass reads from and writes to an external Keystone besides tokens: projects (member
id validation, `spyglass projects sync`) and the catalog (`spyglass keystone register`).

Calls go through a keystoneauth1 session: the service user's (spyglass.identity.keystone) or an
admin's from clouds.yaml / OS_* variables (`admin_session`). A Keystone that does not answer, or
refuses the caller, raises KeystoneUnavailable with the reason: never a silent pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from spyglass.identity.keystone import KeystoneUnavailable, v3_url

# The service user reads projects with this role on the system scope (Keystone's default policy
# for identity:get_project and identity:list_projects also accepts an admin).
PROJECT_READER_ROLE = "reader"
NO_PROJECT_READ = (
    "Keystone does not let the service user read projects: give it the role 'reader' on the system "
    "(openstack role add --user USER --system all reader)"
)
INTERFACES = ("public", "internal", "admin")
UNASKED = "The identity service (Keystone) could not be asked about projects; try again later."


class KeystoneRefused(KeystoneUnavailable):
    """Keystone refused the call (403): the service user lacks a role, which waiting does not fix."""


class UnexpectedAnswer(ValueError):
    """Keystone answered 200 with something that is not what was asked for."""


@dataclass(frozen=True)
class KeystoneProject:
    id: str
    name: str
    domain_id: str
    enabled: bool
    # A domain acting as a project (GET /v3/projects/<domain id> answers it): not a project to copy.
    is_domain: bool = False


@dataclass(frozen=True)
class Registration:
    service_id: str
    created: tuple[str, ...]  # what was created or changed: "service", "endpoint public", ...


class KeystoneDirectory:
    """Projects and catalog entries of the Keystone at `auth_url`, through `session`."""

    def __init__(self, session: ks_session.Session, auth_url: str) -> None:
        self.session = session
        self.base = v3_url(auth_url)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self.session.request(
                self.base + path, method, json=body, raise_exc=False, authenticated=True
            )
        except ks_exceptions.Unauthorized as exc:
            # The caller's own login failed: for the service user, most likely no role on the system.
            refused = f"Keystone refused the login of the caller ({exc}) (403)"
            raise KeystoneRefused(refused, UNASKED) from exc
        except ks_exceptions.ClientException as exc:
            raise KeystoneUnavailable(f"{type(exc).__name__}: {exc}", UNASKED) from exc
        if response.status_code == 404:
            return None
        if response.status_code == 403:
            raise KeystoneRefused(f"Keystone refused {method} {path} (403)", UNASKED)
        if response.status_code >= 300:
            raise KeystoneUnavailable(f"Keystone answered {response.status_code} to {method} {path}", UNASKED)
        return response.json() if response.content else {}

    # ---- projects ---------------------------------------------------------------------------------

    def project(self, project_id: str) -> KeystoneProject | None:
        """The project with this id; None when Keystone has no such project."""
        found = self._call("GET", f"/projects/{quote(project_id, safe='')}")
        if found is None:
            return None
        p = found.get("project") if isinstance(found, dict) else None
        if not isinstance(p, dict) or p.get("id") != project_id:
            raise UnexpectedAnswer(f"Keystone's answer to GET /projects/{project_id} is not that project")
        try:
            return KeystoneProject(
                p["id"], p["name"], p["domain_id"], bool(p["enabled"]), bool(p.get("is_domain"))
            )
        except KeyError as exc:
            raise UnexpectedAnswer(f"Keystone's project {project_id} has no {exc}") from exc

    def projects(self) -> list[KeystoneProject]:
        """Every project (not domains acting as projects)."""
        listed = self._call("GET", "/projects")["projects"]
        return [
            KeystoneProject(p["id"], p["name"], p["domain_id"], bool(p["enabled"]))
            for p in listed
            if not p.get("is_domain")
        ]

    def project_id_named(self, project_name: str, domain_name: str) -> str | None:
        """The id of the project so named in the domain so named (sharing by name), or None."""
        domains = self._call("GET", "/domains?" + urlencode({"name": domain_name}))["domains"]
        if not domains:
            return None
        query = urlencode({"name": project_name, "domain_id": domains[0]["id"]})
        projects = self._call("GET", "/projects?" + query)["projects"]
        return str(projects[0]["id"]) if projects else None

    def domains(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call("GET", "/domains")["domains"]
        return found

    def can_read_projects(self) -> bool:
        """Whether the session may read projects: False on 403; raises when Keystone is unreachable."""
        try:
            self._call("GET", "/projects?limit=1")
        except KeystoneRefused:
            return False
        return True

    # ---- catalog --------------------------------------------------------------------------------

    def register(self, public_url: str, region: str) -> Registration:
        """The `image` service and its public/internal/admin endpoints at `public_url` in `region`:
        created when missing, corrected when they point elsewhere, left alone otherwise."""
        changed: list[str] = []
        if self._call("GET", f"/regions/{region}") is None:
            self._call("POST", "/regions", {"region": {"id": region}})
            changed.append(f"region {region}")
        services = self._call("GET", "/services?type=image")["services"]
        if services:
            service_id = services[0]["id"]
        else:
            body = {"service": {"type": "image", "name": "glance", "description": "Spyglass image service"}}
            service_id = self._call("POST", "/services", body)["service"]["id"]
            changed.append("service")
        url = public_url.rstrip("/")
        for interface in INTERFACES:
            query = f"/endpoints?service_id={service_id}&interface={interface}&region_id={region}"
            existing = self._call("GET", query)["endpoints"]
            if not existing:
                endpoint = {"service_id": service_id, "interface": interface, "region_id": region, "url": url}
                self._call("POST", "/endpoints", {"endpoint": endpoint})
                changed.append(f"endpoint {interface}")
            elif existing[0]["url"] != url:
                self._call("PATCH", f"/endpoints/{existing[0]['id']}", {"endpoint": {"url": url}})
                changed.append(f"endpoint {interface}")
        return Registration(service_id, tuple(changed))


def _clouds_yaml() -> Path | None:
    candidates = [os.environ.get("OS_CLIENT_CONFIG_FILE", ""), "clouds.yaml"]
    candidates.append(str(Path.home() / ".config" / "openstack" / "clouds.yaml"))
    candidates.append("/etc/openstack/clouds.yaml")
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def admin_credentials(cloud: str | None, environ: dict[str, str]) -> dict[str, str] | None:
    """Password credentials of an admin: the cloud named in clouds.yaml, else OS_* variables."""
    if cloud:
        path = _clouds_yaml()
        clouds = (yaml.safe_load(path.read_text()) or {}).get("clouds", {}) if path else {}
        if cloud not in clouds:
            raise ValueError(f"no cloud {cloud!r} in {path or 'any clouds.yaml'}")
        auth = clouds[cloud].get("auth", {})
        return {key: str(value) for key, value in auth.items()}
    if environ.get("OS_AUTH_URL") and environ.get("OS_PASSWORD"):
        names = (
            "auth_url",
            "username",
            "password",
            "project_name",
            "user_domain_name",
            "project_domain_name",
        )
        found = {name: environ.get(f"OS_{name.upper()}", "") for name in names}
        return {name: value for name, value in found.items() if value}
    return None


def password_session(credentials: dict[str, str], timeout: int = 30) -> ks_session.Session:
    auth = v3.Password(
        auth_url=v3_url(credentials["auth_url"]),
        username=credentials.get("username", ""),
        password=credentials.get("password", ""),
        project_name=credentials.get("project_name", ""),
        user_domain_name=credentials.get("user_domain_name", "Default"),
        project_domain_name=credentials.get("project_domain_name", "Default"),
    )
    return ks_session.Session(auth=auth, timeout=timeout)
