"""Image signatures (spyglass.data.signatures): verified while an upload or an import brings the data.

The keys and certificates are made here (tests.signing); the certificates are found in the
configured certificate directory, or refused. A refusal is a 400 with Glance's text for uploads, a
failed import for imports, and either way the image stays `queued` with no data kept.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from spyglass.data import signatures
from spyglass.settings import Settings
from tests.api.helpers import OCTET, create, md5, message
from tests.conftest import Callers, reconfigure
from tests.data.test_imports import blob_files, import_, settle, stage, staged_files
from tests.http_source import HttpSource, http_source
from tests.signing import (
    HASH_METHODS,
    KEY_TYPES,
    Signer,
    certificate,
    private_key,
    signer,
    store_certificate,
)

# Two ingest buffers and a bit: the signature's hash sees every buffer.
DATA = os.urandom(4 * 1024 * 1024 + 12345)
SMALL = b"signed image bytes" * 1000


@pytest.fixture
def certs(api: Callers, tmp_path: Path) -> Path:
    directory = tmp_path / "certs"
    directory.mkdir()
    reconfigure(api.alice.client, signature_certificate_dir=str(directory))
    return directory


def eventually(condition: Any, timeout: float = 10) -> bool:
    """The import task cleans up just after the image settles."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


def put_file(api: Callers, image_id: str, data: bytes) -> Any:
    return api.alice.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)


def assert_queued_without_data(api: Callers, settings: Settings, image_id: str) -> None:
    shown = api.alice.get(f"/v2/images/{image_id}").json()
    assert (shown["status"], shown["size"], shown["checksum"], shown["os_hash_value"]) == ("queued",) + (
        None,
    ) * 3
    assert blob_files(settings) == []
    assert api.alice.get(f"/v2/images/{image_id}/file").status_code == 204


# ---- uploads -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("hash_method", sorted(HASH_METHODS))
def test_every_key_type_and_hash_method_verifies(
    api: Callers, certs: Path, key_type: str, hash_method: str
) -> None:
    signed = signer(certs, key_type)
    image = create(api.alice, **signed.properties(SMALL, hash_method))
    assert put_file(api, image["id"], SMALL).status_code == 204
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["checksum"]) == ("active", md5(SMALL))
    assert shown["img_signature_key_type"] == key_type


def test_large_upload_verifies(api: Callers, certs: Path) -> None:
    image = create(api.alice, **signer(certs, "ECC_SECP384R1").properties(DATA, "SHA-512"))
    assert put_file(api, image["id"], DATA).status_code == 204
    assert api.alice.get(f"/v2/images/{image['id']}/file").content == DATA


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_tampered_upload_is_refused_and_kept_queued(
    api: Callers, settings: Settings, certs: Path, key_type: str
) -> None:
    image = create(api.alice, **signer(certs, key_type).properties(DATA))
    tampered = DATA[:-1] + bytes([DATA[-1] ^ 1])
    response = put_file(api, image["id"], tampered)
    assert response.status_code == 400
    assert message(response) == (
        f"Signature verification failed for image {image['id']}: Signature verification failed"
    )
    assert_queued_without_data(api, settings, image["id"])
    # The right data still goes in afterwards.
    assert put_file(api, image["id"], DATA).status_code == 204
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "active"


@pytest.mark.parametrize("hash_method", ["SHA-512", "SHA-256"])
def test_signature_sharing_a_hash_with_the_digests_still_verifies(
    api: Callers, settings: Settings, certs: Path, hash_method: str
) -> None:
    # SHA-512 is the multihash's algorithm, SHA-256 the declared sha256's: one hash serves both.
    declared = {"owner_specified.openstack.sha256": hashlib.sha256(DATA).hexdigest()}
    image = create(api.alice, **signer(certs, "RSA-PSS").properties(DATA, hash_method), **declared)
    other = create(api.alice, **signer(certs, "RSA-PSS").properties(DATA[1:], hash_method), **declared)
    assert put_file(api, image["id"], DATA).status_code == 204
    response = put_file(api, other["id"], DATA)
    assert response.status_code == 400
    assert message(response).endswith(": Signature verification failed")
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert shown["os_hash_value"] == hashlib.sha512(DATA).hexdigest()


def test_data_signed_by_another_key_is_refused(api: Callers, settings: Settings, certs: Path) -> None:
    properties = signer(certs).properties(SMALL)
    other = store_certificate(
        certs, certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    )
    image = create(api.alice, **{**properties, "img_signature_certificate_uuid": other})
    response = put_file(api, image["id"], SMALL)
    assert response.status_code == 400
    assert message(response).endswith(": Signature verification failed")
    assert_queued_without_data(api, settings, image["id"])


def refusal(image_id: str, reason: str) -> str:
    cursive = f"Signature verification for the image failed: {reason}."
    return f"Signature verification failed for image {image_id}: {cursive}"


@pytest.mark.parametrize(
    ("validity", "reason"),
    [
        (
            {"not_before": datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=60)},
            "not valid after",
        ),
        (
            {"not_before": datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)},
            "not valid before",
        ),
    ],
)
def test_certificate_outside_its_dates_is_refused(
    api: Callers, settings: Settings, certs: Path, validity: dict[str, Any], reason: str
) -> None:
    image = create(api.alice, **signer(certs, "ECC_SECP521R1", **validity).properties(SMALL))
    response = put_file(api, image["id"], SMALL)
    assert response.status_code == 400
    assert f"Certificate is {reason}: " in message(response)
    assert_queued_without_data(api, settings, image["id"])


def test_missing_certificate_is_refused(api: Callers, settings: Settings, certs: Path) -> None:
    missing = str(uuid.uuid4())
    image = create(
        api.alice, **{**signer(certs).properties(SMALL), "img_signature_certificate_uuid": missing}
    )
    response = put_file(api, image["id"], SMALL)
    assert response.status_code == 400
    assert message(response) == refusal(image["id"], f"Certificate not found with ID: {missing}")
    assert_queued_without_data(api, settings, image["id"])


def test_no_certificate_source_is_refused_never_active(
    api: Callers, settings: Settings, tmp_path: Path
) -> None:
    signed = signer(tmp_path / "elsewhere")
    image = create(api.alice, **signed.properties(SMALL))
    response = put_file(api, image["id"], SMALL)
    assert response.status_code == 400
    assert message(response) == refusal(
        image["id"], f"Unable to retrieve certificate with ID: {signed.certificate_uuid}"
    )
    assert_queued_without_data(api, settings, image["id"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"img_signature_hash_method": "SHA256"}, "Invalid signature hash method: SHA256"),
        ({"img_signature_hash_method": "SHA-1"}, "Invalid signature hash method: SHA-1"),
        ({"img_signature_key_type": "RSA"}, "Invalid signature key type: RSA"),
        ({"img_signature_key_type": "ECC_SECP256R1"}, "Invalid signature key type: ECC_SECP256R1"),
        ({"img_signature_key_type": "DSA"}, "Invalid public key type for signature key type: DSA"),
        (
            {"img_signature_key_type": "ECC_SECP521R1"},
            "Invalid public key type for signature key type: ECC_SECP521R1",
        ),
        ({"img_signature": "not base64!"}, "The signature data was not properly encoded using base64"),
        ({"img_signature_certificate_uuid": "../certs/x"}, "Certificate not found with ID: ../certs/x"),
    ],
)
def test_unusable_signature_properties_are_refused(
    api: Callers, settings: Settings, certs: Path, change: dict[str, str], reason: str
) -> None:
    image = create(api.alice, **{**signer(certs, "ECC_SECP384R1").properties(SMALL), **change})
    response = put_file(api, image["id"], SMALL)
    assert response.status_code == 400
    assert message(response) == refusal(image["id"], reason)
    assert_queued_without_data(api, settings, image["id"])


def test_some_of_the_properties_are_not_verified_as_on_glance(api: Callers, certs: Path) -> None:
    properties = signer(certs).properties(SMALL)
    del properties["img_signature_key_type"]
    image = create(api.alice, **properties)
    assert put_file(api, image["id"], b"anything at all").status_code == 204
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "active"


def test_signature_properties_stay_editable_after_activation_as_on_glance(api: Callers, certs: Path) -> None:
    image = create(api.alice, **signer(certs).properties(SMALL))
    assert put_file(api, image["id"], SMALL).status_code == 204
    patch = [{"op": "replace", "path": "/img_signature_hash_method", "value": "SHA-512"}]
    response = api.alice.patch(f"/v2/images/{image['id']}", patch)
    assert response.status_code == 200
    assert response.json()["img_signature_hash_method"] == "SHA-512"


def test_unreachable_key_manager_is_refused(api: Callers, settings: Settings, tmp_path: Path) -> None:
    config = tmp_path / "key-manager.conf"
    # A Barbican endpoint nobody listens on: castellan cannot answer, so the upload cannot be verified.
    config.write_text(
        "[key_manager]\nbackend = barbican\n\n"
        "[barbican]\nbarbican_endpoint = http://127.0.0.1:9\nauth_endpoint = http://127.0.0.1:9/v3\n"
        "barbican_api_version = v1\nnumber_of_retries = 0\n"
    )
    reconfigure(api.alice.client, key_manager_config_file=str(config))
    signed = signer(tmp_path / "not-configured")
    image = create(api.alice, **signed.properties(SMALL))
    response = put_file(api, image["id"], SMALL)
    assert response.status_code == 400
    assert message(response) == refusal(
        image["id"], f"Unable to retrieve certificate with ID: {signed.certificate_uuid}"
    )
    assert_queued_without_data(api, settings, image["id"])


def test_certificate_from_the_key_manager(api: Callers, settings: Settings, tmp_path: Path) -> None:
    # castellan's own in-memory key manager stands in for Barbican: what is tested is Spyglass's
    # castellan side (configuration, the caller's context, lookups, DER certificates, not found).
    from castellan.common.objects.x_509 import X509

    config = tmp_path / "key-manager.conf"
    backend = "castellan.tests.unit.key_manager.mock_key_manager.MockKeyManager"
    config.write_text(f"[key_manager]\nbackend = {backend}\n")
    reconfigure(api.alice.client, key_manager_config_file=str(config))
    key = private_key("ECC_SECP521R1")
    der = certificate(key).public_bytes(serialization.Encoding.DER)
    manager = signatures._key_manager(str(config))
    stored = manager.api.store(manager._context("a token", None), X509(der))
    signed = signatures_properties(key, stored, "ECC_SECP521R1", SMALL)
    image = create(api.alice, **signed)
    assert put_file(api, image["id"], SMALL).status_code == 204
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "active"

    missing = str(uuid.uuid4())
    other = create(api.alice, **{**signed, "img_signature_certificate_uuid": missing})
    response = put_file(api, other["id"], SMALL)
    assert response.status_code == 400
    assert message(response) == refusal(other["id"], f"Certificate not found with ID: {missing}")
    tampered = create(api.alice, **signed)
    assert put_file(api, tampered["id"], SMALL + b"!").status_code == 400
    assert api.alice.get(f"/v2/images/{tampered['id']}").json()["status"] == "queued"
    assert len(blob_files(settings)) == 1


def signatures_properties(key: Any, certificate_uuid: str, key_type: str, data: bytes) -> dict[str, str]:
    return Signer(key_type, key, certificate_uuid).properties(data, "SHA-384")


# ---- imports ------------------------------------------------------------------------------------------


@pytest.fixture
def source(api: Callers) -> Any:
    reconfigure(api.alice.client, web_download_allowed_networks=("127.0.0.1/32",))
    with http_source() as running:
        yield running


def test_glance_direct_verifies_at_import(api: Callers, settings: Settings, certs: Path) -> None:
    image = create(api.alice, **signer(certs, "DSA").properties(DATA, "SHA-384"))
    assert stage(api, image["id"], DATA).status_code == 204
    assert import_(api, image["id"]).status_code == 202
    done = settle(api, image["id"])
    assert (done["status"], done["checksum"]) == ("active", md5(DATA))
    assert eventually(lambda: staged_files(settings) == [])


def test_glance_direct_tampered_fails_the_import(api: Callers, settings: Settings, certs: Path) -> None:
    image = create(api.alice, **signer(certs, "RSA-PSS").properties(DATA))
    # Staging does not verify (the properties may change until the import), as on Glance.
    assert stage(api, image["id"], DATA + b"x").status_code == 204
    assert import_(api, image["id"]).status_code == 202
    done = settle(api, image["id"])
    assert (done["status"], done["size"], done["os_glance_failed_import"]) == ("queued", None, "fs")
    assert eventually(lambda: staged_files(settings) == [] and blob_files(settings) == [])


def test_glance_direct_verifies_the_properties_of_the_import(
    api: Callers, settings: Settings, certs: Path
) -> None:
    signed = signer(certs, "ECC_SECP384R1")
    image = create(api.alice, **signed.properties(DATA))
    assert stage(api, image["id"], DATA).status_code == 204
    # Changed after staging: the import verifies what the image says when it is imported.
    patch = [
        {
            "op": "replace",
            "path": "/img_signature",
            "value": signed.properties(b"other data")["img_signature"],
        }
    ]
    assert api.alice.patch(f"/v2/images/{image['id']}", patch).status_code == 200
    assert import_(api, image["id"]).status_code == 202
    assert settle(api, image["id"])["status"] == "queued"
    assert eventually(lambda: blob_files(settings) == [])


def test_web_download_verifies(api: Callers, settings: Settings, certs: Path, source: HttpSource) -> None:
    signed = signer(certs, "ECC_SECP521R1")
    good = create(api.alice, **signed.properties(DATA, "SHA-224"))
    bad = create(api.alice, **signed.properties(DATA, "SHA-224"))
    assert import_(api, good["id"], "web-download", uri=source.serve("/good", DATA)).status_code == 202
    assert import_(api, bad["id"], "web-download", uri=source.serve("/bad", DATA[1:])).status_code == 202
    assert settle(api, good["id"])["status"] == "active"
    failed = settle(api, bad["id"])
    assert (failed["status"], failed["size"], failed["os_glance_failed_import"]) == ("queued", None, "fs")
    assert eventually(lambda: len(blob_files(settings)) == 1)


def test_web_download_without_certificate_fails(api: Callers, settings: Settings, source: HttpSource) -> None:
    image = create(api.alice, **signer(Path(settings.data_dir) / "nowhere").properties(SMALL))
    assert import_(api, image["id"], "web-download", uri=source.serve("/img", SMALL)).status_code == 202
    assert settle(api, image["id"])["status"] == "queued"
    assert eventually(lambda: blob_files(settings) == [])


# ---- the certificate directory ------------------------------------------------------------------------


def test_directory_reads_pem_and_der_and_nothing_outside(tmp_path: Path) -> None:
    cert = certificate(private_key("ECC_SECP384R1"))
    (tmp_path / "der.pem").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    pem = store_certificate(tmp_path / "dir", cert)
    (tmp_path / "dir" / "junk.pem").write_text("not a certificate")
    directory = signatures.CertificateDirectory(tmp_path / "dir")
    assert directory(pem) == cert
    assert directory("../der") is None
    assert signatures.CertificateDirectory(tmp_path)("der") == cert
    with pytest.raises(signatures.CertificateUnavailable):
        directory("junk")
