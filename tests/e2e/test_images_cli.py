"""The `openstack image ...` commands of python-openstackclient against a real `spyglass serve`.

Each CLI call costs a second or so, so every test checks several things per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import md5_of, random_file, sha512_of
from tests.e2e.conftest import Server

A, B, ADMIN = "spyglass-a", "spyglass-b", "spyglass-admin"


@dataclass(frozen=True)
class Files:
    small: Path
    big: Path
    work: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    work = tmp_path_factory.mktemp("cli-files")
    # Odd sizes, so that no buffer or chunk boundary lines up with the end of the data.
    small = random_file(work / "small.raw", 64 * 1024 + 7)
    big = random_file(work / "big.raw", 6 * 1024 * 1024 + 12345)
    return Files(small, big, work)


def create(server: Server, cloud: str, name: str, path: Path, *options: str) -> dict[str, Any]:
    image: dict[str, Any] = server.openstack_json(
        cloud,
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(path),
        *options,
        name,
    )
    return image


def show(server: Server, cloud: str, name_or_id: str) -> dict[str, Any]:
    image: dict[str, Any] = server.openstack_json(cloud, "image", "show", name_or_id)
    return image


def listing(server: Server, cloud: str, *options: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = server.openstack_json(cloud, "image", "list", *options)
    return rows


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["ID"] for row in rows]


def refused(server: Server, cloud: str, *args: str) -> str:
    """Run a command that must fail; its error output."""
    result = server.openstack(cloud, *args, check=False)
    assert result.returncode != 0, f"openstack {' '.join(args)} succeeded:\n{result.stdout}"
    return result.stderr


@pytest.fixture(scope="module")
def small_image(server: Server, files: Files) -> dict[str, Any]:
    return create(server, A, "cli-small", files.small)


def test_create_reports_size_and_checksums_and_show_finds_it(
    server: Server, files: Files, small_image: dict[str, Any]
) -> None:
    size = files.small.stat().st_size
    assert small_image["status"] == "active"
    assert small_image["size"] == size
    assert small_image["virtual_size"] == size
    assert small_image["checksum"] == md5_of(files.small)
    assert small_image["properties"]["os_hash_algo"] == "sha512"
    assert small_image["properties"]["os_hash_value"] == sha512_of(files.small)
    assert small_image["disk_format"] == "raw"
    assert small_image["container_format"] == "bare"
    assert small_image["visibility"] == "shared"
    assert small_image["protected"] is False
    assert small_image["file"] == f"/v2/images/{small_image['id']}/file"

    by_name = show(server, A, "cli-small")
    by_id = show(server, A, small_image["id"])
    for shown in (by_name, by_id):
        assert shown["id"] == small_image["id"]
        assert shown["checksum"] == small_image["checksum"]
        assert shown["owner"] == small_image["owner"]
        assert shown["size"] == size


def test_list_filters_sort_and_limit(server: Server, files: Files) -> None:
    bravo = create(
        server, A, "lst-bravo", files.small, "--private", "--property", "flavor=blue", "--tag", "red"
    )
    alpha = create(server, A, "lst-alpha", files.small, "--property", "flavor=green")

    assert {alpha["id"], bravo["id"]} <= set(ids(listing(server, A)))
    private = ids(listing(server, A, "--private"))
    assert bravo["id"] in private and alpha["id"] not in private
    shared = ids(listing(server, A, "--shared"))
    assert alpha["id"] in shared and bravo["id"] not in shared

    long = listing(server, A, "--long", "--sort", "name:asc")
    names = [row["Name"] for row in long]
    assert names == sorted(names)
    row = next(r for r in long if r["ID"] == bravo["id"])
    assert row["Visibility"] == "private"
    assert row["Checksum"] == md5_of(files.small)
    assert row["Size"] == files.small.stat().st_size
    assert row["Disk Format"] == "raw"
    assert row["Container Format"] == "bare"
    assert row["Project"] == bravo["owner"]
    assert row["Tags"] == ["red"]
    assert row["Hash Algorithm"] == "sha512"

    # The CLI sorts and filters properties on its side; the server pages newest first.
    assert ids(listing(server, A, "--limit", "1")) == [alpha["id"]]
    assert ids(listing(server, A, "--property", "flavor=blue")) == [bravo["id"]]
    assert ids(listing(server, A, "--tag", "red")) == [bravo["id"]]


def test_set_unset_protect_and_delete(server: Server, files: Files) -> None:
    image = create(server, A, "cli-set", files.small)
    server.openstack(
        A,
        "image",
        "set",
        "--property",
        "color=teal",
        "--tag",
        "blue",
        "--name",
        "cli-set-renamed",
        "--min-disk",
        "3",
        "--protected",
        image["id"],
    )
    changed = show(server, A, "cli-set-renamed")
    assert changed["id"] == image["id"]
    assert changed["properties"]["color"] == "teal"
    assert changed["tags"] == ["blue"]
    assert changed["min_disk"] == 3
    assert changed["protected"] is True

    assert "protected" in refused(server, A, "image", "delete", image["id"])

    server.openstack(A, "image", "unset", "--property", "color", "--tag", "blue", image["id"])
    server.openstack(A, "image", "set", "--unprotected", image["id"])
    restored = show(server, A, image["id"])
    assert "color" not in restored["properties"]
    assert restored["tags"] == []
    assert restored["protected"] is False
    assert restored["min_disk"] == 3
    assert restored["name"] == "cli-set-renamed"

    server.openstack(A, "image", "delete", image["id"])
    assert "No Image found" in refused(server, A, "image", "show", image["id"])


def test_save_returns_the_uploaded_bytes(server: Server, files: Files, small_image: dict[str, Any]) -> None:
    big = create(server, A, "cli-big", files.big)
    assert big["size"] == files.big.stat().st_size
    assert big["checksum"] == md5_of(files.big)

    for image, original in ((small_image, files.small), (big, files.big)):
        out = files.work / f"saved-{image['id']}"
        server.openstack(A, "image", "save", "--file", str(out), image["id"])
        assert md5_of(out) == md5_of(original)
        assert out.read_bytes() == original.read_bytes()


def test_deactivate_and_activate_by_owner_and_admin(server: Server, files: Files) -> None:
    image = create(server, A, "cli-deactivate", files.small)
    server.openstack(A, "image", "set", "--deactivate", image["id"])
    assert show(server, A, image["id"])["status"] == "deactivated"

    # Only an admin may download a deactivated image.
    refused(server, A, "image", "save", "--file", str(files.work / "denied"), image["id"])
    out = files.work / "admin-saved"
    server.openstack(ADMIN, "image", "save", "--file", str(out), image["id"])
    assert out.read_bytes() == files.small.read_bytes()

    # Another project cannot see the image at all, let alone reactivate it.
    assert "No Image found" in refused(server, B, "image", "set", "--activate", image["id"])

    server.openstack(A, "image", "set", "--activate", image["id"])
    server.openstack(ADMIN, "image", "set", "--deactivate", image["id"])
    assert show(server, ADMIN, image["id"])["status"] == "deactivated"
    server.openstack(ADMIN, "image", "set", "--activate", image["id"])
    assert show(server, A, image["id"])["status"] == "active"


def test_public_needs_admin_and_community_does_not(server: Server, files: Files) -> None:
    error = refused(server, A, "image", "create", "--public", "--file", str(files.small), "cli-public-denied")
    assert "403" in error and "publicize_image" in error
    assert listing(server, A, "--name", "cli-public-denied") == []

    public = create(server, ADMIN, "cli-public", files.small, "--public")
    assert public["visibility"] == "public"
    community = create(server, A, "cli-community", files.small, "--community")
    assert community["visibility"] == "community"

    # Another project lists public images, and finds community images when it asks for them.
    assert public["id"] in ids(listing(server, B, "--public"))
    assert community["id"] not in ids(listing(server, B))
    assert community["id"] in ids(listing(server, B, "--community"))
    assert show(server, B, community["id"])["checksum"] == md5_of(files.small)

    # The owner may not turn its own image public either.
    assert "publicize_image" in refused(server, A, "image", "set", "--public", community["id"])
