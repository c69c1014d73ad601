"""Small helpers shared by the Images API tests."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.conftest import Caller

OCTET = {"Content-Type": "application/octet-stream"}


def create(caller: Caller, **body: Any) -> dict[str, Any]:
    """Create an image and return its JSON; fails the test unless the answer is 201."""
    response = caller.post("/v2/images", json={"disk_format": "raw", "container_format": "bare", **body})
    assert response.status_code == 201, response.text
    image: dict[str, Any] = response.json()
    return image


def upload(caller: Caller, image_id: str, data: bytes) -> None:
    response = caller.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
    assert response.status_code == 204, response.text


def active(caller: Caller, data: bytes = b"image-bytes", **body: Any) -> dict[str, Any]:
    """An uploaded image, as shown after the upload."""
    image = create(caller, **body)
    upload(caller, image["id"], data)
    shown: dict[str, Any] = caller.get(f"/v2/images/{image['id']}").json()
    return shown


def message(response: Any) -> str:
    """The message of a Glance JSON error body, without webob's trailing decoration."""
    text: str = response.json()["message"]
    return text.split("<br /><br />")[0]


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
