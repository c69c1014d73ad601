"""A small client for the Spyglass extension endpoints, on the cloud's image endpoint."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from keystoneauth1 import adapter
from osc_lib import exceptions

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class SpyglassClient:
    def __init__(self, session: Any, *, region_name: str | None = None, interface: str | None = None) -> None:
        self._http = adapter.Adapter(
            session, service_type="image", region_name=region_name, interface=interface
        )

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        kwargs: dict[str, Any] = {"raise_exc": False, "headers": {"Accept": "application/json"}}
        if body is not None:
            kwargs["json"] = body
        response = self._http.request(path, method, **kwargs)
        if response.status_code >= 400:
            raise exceptions.CommandError(f"{response.status_code}: {_message(response)}")
        return response.json() if response.content else None

    def find_image(self, name_or_id: str) -> str:
        """The image id: as given when it is one (an ex-member still reads its events), else by name."""
        if UUID.fullmatch(name_or_id):
            return name_or_id
        query = urlencode({"name": name_or_id, "member_status": "all", "visibility": "all"})
        found = self._call("GET", f"/v2/images?{query}")["images"]
        if len(found) != 1:
            raise exceptions.CommandError(
                f"{len(found) or 'No'} images are named {name_or_id!r}; give the image ID instead."
            )
        image_id: str = found[0]["id"]
        return image_id

    def usage(self, image_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call("GET", f"/v2/images/{image_id}/usage")["usage"]
        return rows

    def quota_usage(self) -> dict[str, dict[str, int]]:
        """GET /v2/info/usage: each quota's limit (-1: none) and usage for the caller's project."""
        found: dict[str, dict[str, int]] = self._call("GET", "/v2/info/usage")["usage"]
        return found

    def events(self, image_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """Every event the caller may read, following the pages."""
        rows: list[dict[str, Any]] = []
        path: str | None = f"/v2/images/{image_id}/events?limit={limit}"
        while path:
            page = self._call("GET", path)
            rows.extend(page["events"])
            path = page.get("next")
        return rows

    def copy(self, image_id: str, name: str | None = None) -> dict[str, Any]:
        body = {"name": name} if name is not None else {}
        image: dict[str, Any] = self._call("POST", f"/v2/images/{image_id}/actions/copy", body)
        return image

    def restore(self, image_id: str) -> dict[str, Any]:
        image: dict[str, Any] = self._call("POST", f"/v2/images/{image_id}/actions/restore")
        return image

    def invitations(self, status: str = "pending") -> list[dict[str, Any]]:
        query = urlencode({"status": status})
        rows: list[dict[str, Any]] = self._call("GET", f"/v2/shared-images/invitations?{query}")[
            "invitations"
        ]
        return rows

    def trust_add(self, body: dict[str, str]) -> dict[str, Any]:
        rule: dict[str, Any] = self._call("POST", "/v2/shared-images/auto-accept", body)
        return rule

    def trust_list(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = self._call("GET", "/v2/shared-images/auto-accept")["rules"]
        return rules

    def trust_delete(self, rule_id: str) -> None:
        self._call("DELETE", f"/v2/shared-images/auto-accept/{rule_id}")

    def leave(self, image_id: str, member_id: str | None = None) -> None:
        """End a membership: the caller's project's own, unless an admin names another member."""
        member = member_id or self._http.get_project_id()
        self._call("POST", f"/v2/images/{image_id}/members/{member}/actions/leave")

    def share_in_bulk(self, body: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
        """(applied, results): an atomic call that failed answers 409 with its results."""
        kwargs: dict[str, Any] = {"raise_exc": False, "headers": {"Accept": "application/json"}, "json": body}
        response = self._http.request("/v2/shared-images/bulk", "POST", **kwargs)
        if response.status_code not in (200, 409) or "results" not in response.text:
            raise exceptions.CommandError(f"{response.status_code}: {_message(response)}")
        document = response.json()
        return bool(document["applied"]), list(document["results"])

    def set_expiry(self, image_id: str, member_id: str, expires_at: str | None) -> dict[str, Any]:
        path = f"/v2/images/{image_id}/members/{member_id}/expiry"
        row: dict[str, Any] = self._call("PUT", path, {"expires_at": expires_at})
        return row

    def deprecate(self, image_id: str, terms: dict[str, str | None]) -> dict[str, Any]:
        image: dict[str, Any] = self._call("POST", f"/v2/images/{image_id}/actions/deprecate", terms)
        return image

    def undeprecate(self, image_id: str) -> dict[str, Any]:
        image: dict[str, Any] = self._call("POST", f"/v2/images/{image_id}/actions/undeprecate")
        return image

    def family_latest(self, family: str) -> dict[str, Any]:
        image: dict[str, Any] = self._call("GET", f"/v2/families/{quote(family, safe='')}/latest")
        return image

    def notices(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call("GET", "/v2/shared-images/notices")["notices"]
        return rows


def _message(response: Any) -> str:
    try:
        text = str(response.json().get("message", response.text))
    except ValueError:
        text = response.text
    return text.split("<br />")[0].strip()
