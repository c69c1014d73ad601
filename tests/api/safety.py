"""Helpers for the sharing-safety tests: an app with other settings, shares, downloads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import active
from tests.conftest import Caller, Callers, World

OVERRIDE = {"X-Spyglass-Override-Impact": "true"}


@contextmanager
def callers_with(settings: Settings, db: Database, world: World, **overrides: Any) -> Iterator[Callers]:
    """The usual callers, against an app built with some settings changed."""
    app = create_app(replace(settings, **overrides), db=db, store=FilesystemStore(settings.blob_dir))
    with TestClient(app, base_url="http://127.0.0.1:9292") as client:
        yield Callers(client, world)


def share(owner: Caller, member_project: str, member: Caller | None = None, **body: Any) -> str:
    """An active image of `owner` shared with a project (accepted when `member` is given)."""
    image_id: str = active(owner, b"shared image bytes", **body)["id"]
    added = owner.post(f"/v2/images/{image_id}/members", json={"member": member_project})
    assert added.status_code == 200, added.text
    if member is not None:
        accepted = member.put(f"/v2/images/{image_id}/members/{member_project}", json={"status": "accepted"})
        assert accepted.status_code == 200, accepted.text
    return image_id


def download(caller: Caller, image_id: str, **kw: Any) -> bytes:
    response = caller.get(f"/v2/images/{image_id}/file", **kw)
    assert response.status_code in (200, 206), response.text
    data: bytes = response.content
    return data


def event_types(caller: Caller, image_id: str) -> list[str]:
    response = caller.get(f"/v2/images/{image_id}/events")
    assert response.status_code == 200, response.text
    return [e["type"] for e in response.json()["events"]]


def protect(caller: Caller, image_id: str, value: str = "true") -> None:
    ops = [{"op": "add", "path": "/spyglass_protect_consumers", "value": value}]
    assert caller.patch(f"/v2/images/{image_id}", ops).status_code == 200
