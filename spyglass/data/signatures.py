"""Image signature verification: the `img_signature*` properties, checked against the data.

An image that carries all four of `img_signature`, `img_signature_hash_method`,
`img_signature_key_type` and `img_signature_certificate_uuid` gets its data verified as it comes in,
exactly where Glance verifies it (with the cursive library): an upload's data while it is received,
an import's data when the import puts it into the store. An image with only some of them is not
verified, as on Glance (Nova refuses to boot it when it verifies signatures itself).

`prepare` turns the properties into a `SignatureCheck` before any data flows, which fails at once on
a property Glance refuses (an unknown hash method or key type, a signature that is not base64) and
on a certificate that cannot be had or is outside its validity dates; the check then hashes the data
in the same pass as the other digests (spyglass.data.ingest) and verifies the signature at the end.
Any refusal is `SignatureFailed`, a 400 with Glance's text.

Certificates come from a directory of `<uuid>.pem` files (`signature_certificate_dir`, for the
embedded deployment) and from a key manager through castellan (`key_manager_config_file`: the
`[key_manager]` and `[barbican]` sections as Glance reads them), in that order. castellan is
imported only when a key manager is configured.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa, utils

from spyglass.errors import Invalid
from spyglass.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE = "img_signature"
HASH_METHOD = "img_signature_hash_method"
KEY_TYPE = "img_signature_key_type"
CERTIFICATE_UUID = "img_signature_certificate_uuid"
PROPERTIES = (SIGNATURE, HASH_METHOD, KEY_TYPE, CERTIFICATE_UUID)

# The names and algorithms cursive accepts.
HASH_METHODS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA-224": hashes.SHA224,
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}
# The data is hashed with hashlib, which lets go of the GIL while it hashes (so the signature's
# hash runs beside the others, spyglass.data.ingest), and the digest verified as prehashed.
# cursive's curves are the prime curves of at least 384 bits (its binary SECT* curves are gone from
# cryptography since 47.0).
KEY_TYPES: dict[str, type] = {
    "RSA-PSS": rsa.RSAPublicKey,
    "DSA": dsa.DSAPublicKey,
    "ECC_SECP384R1": ec.EllipticCurvePublicKey,
    "ECC_SECP521R1": ec.EllipticCurvePublicKey,
}
_CURVES = {"ECC_SECP384R1": ec.SECP384R1.name, "ECC_SECP521R1": ec.SECP521R1.name}


class SignatureFailed(Invalid):
    """The data does not verify, or the signature properties cannot be used (400, as on Glance)."""

    def __init__(self, image_id: str, reason: str) -> None:
        super().__init__(f"Signature verification failed for image {image_id}: {reason}")


def _refused(image_id: str, reason: str) -> SignatureFailed:
    # cursive's wording for a property or certificate it refuses.
    return SignatureFailed(image_id, f"Signature verification for the image failed: {reason}.")


class CertificateUnavailable(Exception):
    """The certificate source could not answer (not: the certificate does not exist)."""


Certificates = Callable[[str], "x509.Certificate | None"]


@dataclass(frozen=True)
class SignatureCheck:
    """What the data of one image must verify against; `hasher` starts a pass over the data."""

    image_id: str
    signature: bytes
    algorithm: hashes.HashAlgorithm
    key_type: str
    public_key: Any

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm.name)

    def verify(self, hasher: hashlib._Hash) -> None:
        """Raise SignatureFailed unless the signature matches the data `hasher` went through."""
        digest = hasher.digest()
        prehashed = utils.Prehashed(self.algorithm)
        key = self.public_key
        try:
            if isinstance(key, rsa.RSAPublicKey):
                pss = padding.PSS(mgf=padding.MGF1(self.algorithm), salt_length=padding.PSS.MAX_LENGTH)
                key.verify(self.signature, digest, pss, prehashed)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(self.signature, digest, ec.ECDSA(prehashed))
            else:
                key.verify(self.signature, digest, prehashed)
        except InvalidSignature:
            raise SignatureFailed(self.image_id, "Signature verification failed") from None
        except UnsupportedAlgorithm:
            raise _refused(self.image_id, "the algorithm is not supported on this system") from None
        log.info("Verified the signature of image %s", self.image_id)


def is_signed(properties: dict[str, Any]) -> bool:
    """True when the image carries all four signature properties (Glance verifies only then)."""
    return all(name in properties for name in PROPERTIES)


def prepare(image_id: str, properties: dict[str, Any], certificates: Certificates) -> SignatureCheck | None:
    """The check for an image's data, or None when the image is not signed (may block: it fetches
    the certificate). Raises SignatureFailed on properties or a certificate Glance would refuse."""
    if not is_signed(properties):
        return None
    signature = _decoded(image_id, properties[SIGNATURE])
    method = properties[HASH_METHOD]
    if method not in HASH_METHODS:
        raise _refused(image_id, f"Invalid signature hash method: {method}")
    key_type = properties[KEY_TYPE]
    if key_type not in KEY_TYPES:
        raise _refused(image_id, f"Invalid signature key type: {key_type}")
    certificate = _certificate(image_id, str(properties[CERTIFICATE_UUID]), certificates)
    public_key = certificate.public_key()
    if not isinstance(public_key, KEY_TYPES[key_type]) or (
        isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name != _CURVES[key_type]
    ):
        raise _refused(image_id, f"Invalid public key type for signature key type: {key_type}")
    return SignatureCheck(image_id, signature, HASH_METHODS[method](), key_type, public_key)


def _decoded(image_id: str, value: Any) -> bytes:
    try:
        return base64.b64decode(str(value))
    except (binascii.Error, ValueError):
        raise _refused(image_id, "The signature data was not properly encoded using base64") from None


def _certificate(image_id: str, uuid: str, certificates: Certificates) -> x509.Certificate:
    try:
        certificate = certificates(uuid)
    except CertificateUnavailable as exc:
        log.error("Unable to retrieve certificate with ID %s: %s", uuid, exc)
        raise _refused(image_id, f"Unable to retrieve certificate with ID: {uuid}") from None
    if certificate is None:
        raise _refused(image_id, f"Certificate not found with ID: {uuid}")
    # Glance (cursive since 0.2) no longer looks at the dates at upload; an expired or not yet
    # valid certificate proves nothing, so Spyglass refuses it as cursive did before.
    now = datetime.datetime.now(datetime.UTC)
    if now < certificate.not_valid_before_utc:
        raise _refused(image_id, f"Certificate is not valid before: {certificate.not_valid_before_utc} UTC")
    if now > certificate.not_valid_after_utc:
        raise _refused(image_id, f"Certificate is not valid after: {certificate.not_valid_after_utc} UTC")
    return certificate


# ---- where certificates come from -----------------------------------------------------------------


def certificates_for(settings: Settings, token: str | None, project_id: str | None) -> Certificates:
    """The certificate lookup for one caller: the directory, then the key manager, as configured.
    With neither configured every certificate is unavailable (a 400, never an unverified image)."""
    sources: list[Certificates] = []
    if settings.signature_certificate_dir:
        sources.append(CertificateDirectory(Path(settings.signature_certificate_dir)))
    if settings.key_manager_config_file:
        config_file = settings.key_manager_config_file
        sources.append(lambda uuid: _key_manager(config_file).certificate(uuid, token, project_id))

    def lookup(uuid: str) -> x509.Certificate | None:
        if not sources:
            raise CertificateUnavailable(
                "no certificate source: set signature_certificate_dir or key_manager_config_file"
            )
        for source in sources:
            found = source(uuid)
            if found is not None:
                return found
        return None

    return lookup


class CertificateDirectory:
    """Certificates as `<uuid>.pem` files (PEM or DER) in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, uuid: str) -> x509.Certificate | None:
        # Only a plain name: a uuid never reaches outside the directory.
        if not uuid or "/" in uuid or "\\" in uuid or uuid.startswith("."):
            return None
        try:
            data = (self.directory / f"{uuid}.pem").read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CertificateUnavailable(str(exc)) from exc
        try:
            if b"-----BEGIN" in data:
                return x509.load_pem_x509_certificate(data)
            return x509.load_der_x509_certificate(data)
        except ValueError as exc:
            raise CertificateUnavailable(f"{uuid}.pem is not an X.509 certificate") from exc


class KeyManager:
    """Certificates from a key manager (Barbican, Vault) through castellan, configured by an
    oslo.config file with the `[key_manager]` and `[barbican]`/`[vault]` sections Glance uses."""

    def __init__(self, config_file: str) -> None:
        # castellan and oslo.config only when a key manager is configured (the `key-manager` extra).
        from castellan import key_manager
        from oslo_config import cfg

        self.conf = cfg.ConfigOpts()
        self.conf([], project="spyglass", default_config_files=[config_file])
        self.api = key_manager.API(self.conf)

    def certificate(self, uuid: str, token: str | None, project_id: str | None) -> x509.Certificate | None:
        from castellan.common import exception as castellan_errors

        try:
            managed = self.api.get(self._context(token, project_id), uuid)
        except castellan_errors.ManagedObjectNotFoundError:
            return None
        except Exception as exc:
            # Backend-specific errors (Barbican, Vault, keystoneauth) all mean: no answer.
            raise CertificateUnavailable(f"{type(exc).__name__}: {exc}") from exc
        encoded = managed.get_encoded()
        if managed.format != "X.509" or encoded is None:
            raise CertificateUnavailable(f"Invalid certificate format: {managed.format}")
        # castellan hands certificates over DER-encoded.
        return x509.load_der_x509_certificate(encoded)

    def _context(self, token: str | None, project_id: str | None) -> Any:
        """The caller's token, as Glance passes its request context; else the credentials of the
        `[key_manager]` section (auth_type and friends)."""
        if token:
            from oslo_context import context

            return context.RequestContext(auth_token=token, project_id=project_id)
        from castellan.common import utils as castellan_utils

        return castellan_utils.credential_factory(conf=self.conf)


_managers: dict[str, KeyManager] = {}
_managers_lock = threading.Lock()


def _key_manager(config_file: str) -> KeyManager:
    """One castellan client per configuration file and process."""
    with _managers_lock:
        if config_file not in _managers:
            try:
                _managers[config_file] = KeyManager(config_file)
            except ImportError as exc:
                raise CertificateUnavailable(
                    "key_manager_config_file is set but castellan is not installed "
                    "(pip install 'spyglass[key-manager]')"
                ) from exc
            except Exception as exc:
                # oslo.config and stevedore errors: a configuration the key manager cannot start with.
                raise CertificateUnavailable(f"key manager configuration {config_file}: {exc}") from exc
        return _managers[config_file]
