"""Signed images through the real clients: `openstack image create --property img_signature=...`
and python-glanceclient, against a `spyglass serve` whose certificates are in a directory."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from glanceclient import exc

from tests.e2e.clients import glance, md5_of, random_file
from tests.e2e.conftest import Server, start_server, stop_server
from tests.signing import signer


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    root = tmp_path_factory.mktemp("signing")
    certs = root / "certs"
    certs.mkdir()
    running = start_server(root / "data", env={"SPYGLASS_SIGNATURE_CERTIFICATE_DIR": str(certs)})
    yield running, certs
    stop_server(running)


def properties(values: dict[str, str]) -> list[str]:
    options: list[str] = []
    for name, value in values.items():
        options += ["--property", f"{name}={value}"]
    return options


def test_cli_signed_upload_goes_active(signing: tuple[Server, Path], tmp_path: Path) -> None:
    server, certs = signing
    path = random_file(tmp_path / "signed.raw", 3 * 1024 * 1024)
    signed = signer(certs, "RSA-PSS").properties(path.read_bytes(), "SHA-256")
    image = server.create_image("spyglass-a", "signed", "--file", str(path), *properties(signed))
    shown = server.openstack_json("spyglass-a", "image", "show", image["id"])
    assert (shown["status"], shown["checksum"]) == ("active", md5_of(path))
    assert shown["properties"]["img_signature_certificate_uuid"] == signed["img_signature_certificate_uuid"]


def test_cli_tampered_upload_is_refused(signing: tuple[Server, Path], tmp_path: Path) -> None:
    server, certs = signing
    path = random_file(tmp_path / "tampered.raw", 1024 * 1024)
    signed = signer(certs, "ECC_SECP384R1").properties(path.read_bytes() + b"!", "SHA-384")
    result = server.refused_create("spyglass-a", "tampered", "--file", str(path), *properties(signed))
    assert "400" in result.stderr and "Signature verification failed" in result.stderr
    for image in server.openstack_json("spyglass-a", "image", "list", "--name", "tampered"):
        shown = server.openstack_json("spyglass-a", "image", "show", image["id"])
        assert (shown["status"], shown["size"]) == ("queued", None)


def test_glanceclient_signed_upload(signing: tuple[Server, Path]) -> None:
    server, certs = signing
    client = glance(server, "spyglass-a")
    data = b"signed with DSA" * 10000
    signed = signer(certs, "DSA").properties(data, "SHA-512")
    image = client.images.create(name="gc-signed", disk_format="raw", container_format="bare", **signed)
    with pytest.raises(exc.HTTPBadRequest) as refused:
        client.images.upload(image["id"], io.BytesIO(data[:-1]))
    assert "Signature verification failed" in str(refused.value)
    assert client.images.get(image["id"])["status"] == "queued"
    client.images.upload(image["id"], io.BytesIO(data))
    assert client.images.get(image["id"])["status"] == "active"
    assert b"".join(client.images.data(image["id"])) == data
