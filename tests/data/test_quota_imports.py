"""Quotas on interoperable import (spyglass.data.imports): staged data held against image_size_total
when its import starts, a web-download counted as an upload in flight and refused where its data
crosses image_size_total, leaving nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spyglass.settings import Settings
from tests.api.helpers import create
from tests.conftest import Callers, World, reconfigure
from tests.data.test_imports import blob_files, import_, settle, stage
from tests.http_source import HttpSource, http_source
from tests.images.test_quotas import MIB, assert_over, register, usage


@pytest.fixture
def source(api: Callers) -> Iterator[HttpSource]:
    reconfigure(api.alice.client, web_download_allowed_networks=("127.0.0.1/32",))
    with http_source() as running:
        yield running


def test_an_import_of_staged_data_is_held_against_image_size_total(api: Callers, world: World) -> None:
    register(api, "image_size_total", 1)
    fits, over = create(api.alice), create(api.alice)
    assert stage(api, fits["id"], b"f" * MIB).status_code == 204
    assert stage(api, over["id"], b"o").status_code == 204
    assert import_(api, fits["id"]).status_code == 202  # at the limit
    assert settle(api, fits["id"])["status"] == "active"
    refused = import_(api, over["id"])
    assert_over(refused, world.projects["alpha"], "image_size_total", 1, 1, 1)
    # Refused before it started: the image is still staged and may be imported once there is room.
    assert api.alice.get(f"/v2/images/{over['id']}").json()["status"] == "uploading"
    assert api.alice.delete(f"/v2/images/{fits['id']}").status_code == 204
    assert import_(api, over["id"]).status_code == 202
    assert settle(api, over["id"])["status"] == "active"


def test_a_web_download_is_an_upload_in_flight(api: Callers, world: World, source: HttpSource) -> None:
    register(api, "image_count_uploading", 1)
    staged, fetched = create(api.alice), create(api.alice)
    assert stage(api, staged["id"], b"s").status_code == 204
    refused = import_(api, fetched["id"], "web-download", uri=source.serve("/a", b"a"))
    assert_over(refused, world.projects["alpha"], "image_count_uploading", 1, 1, 1)
    assert api.alice.get(f"/v2/images/{fetched['id']}").json()["status"] == "queued"


def test_a_web_download_crossing_image_size_total_leaves_nothing(
    api: Callers, settings: Settings, source: HttpSource
) -> None:
    register(api, "image_size_total", 1)
    image = create(api.alice)
    response = import_(api, image["id"], "web-download", uri=source.serve("/big", b"b" * (MIB + 1)))
    assert response.status_code == 202
    done = settle(api, image["id"])
    assert done["status"] == "queued"
    assert done["os_glance_failed_import"] == "fs"
    assert blob_files(settings) == []
    assert usage(api.alice)["image_size_total"]["usage"] == 0
    small = create(api.alice)
    assert (
        import_(api, small["id"], "web-download", uri=source.serve("/small", b"s" * MIB)).status_code == 202
    )
    assert settle(api, small["id"])["status"] == "active"
