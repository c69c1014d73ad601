"""Signing keys, certificates and image signatures made on the spot, as a Glance user makes them
(the steps of Glance's "Image Signature Verification" guide, with `cryptography` instead of openssl)."""

from __future__ import annotations

import base64
import datetime
import functools
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import NameOID

KEY_TYPES = ("RSA-PSS", "DSA", "ECC_SECP384R1", "ECC_SECP521R1")
HASH_METHODS = {
    "SHA-224": hashes.SHA224,
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}
DAY = datetime.timedelta(days=1)


@functools.cache
def private_key(key_type: str) -> Any:
    """One key per type for the whole test session (DSA keys are slow to make)."""
    if key_type == "RSA-PSS":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "DSA":
        return dsa.generate_private_key(key_size=2048)
    curve = {"ECC_SECP384R1": ec.SECP384R1(), "ECC_SECP521R1": ec.SECP521R1()}[key_type]
    return ec.generate_private_key(curve)


def certificate(key: Any, not_before: datetime.datetime | None = None, days: int = 30) -> x509.Certificate:
    """A self-signed certificate for `key`, valid for `days` from `not_before` (default: yesterday)."""
    now = datetime.datetime.now(datetime.UTC)
    start = not_before or now - DAY
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "image signing")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + days * DAY)
    )
    return builder.sign(key, hashes.SHA256())


def sign(key: Any, data: bytes, hash_method: str) -> str:
    """The `img_signature` value: the base64 of the signature of the data itself."""
    algorithm = HASH_METHODS[hash_method]()
    if isinstance(key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH)
        signature = key.sign(data, pss, algorithm)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(algorithm))
    else:
        signature = key.sign(data, algorithm)
    return base64.b64encode(signature).decode()


@dataclass(frozen=True)
class Signer:
    """A key and its certificate, stored as `<uuid>.pem` in a certificate directory."""

    key_type: str
    key: Any
    certificate_uuid: str

    def properties(self, data: bytes, hash_method: str = "SHA-256") -> dict[str, str]:
        return {
            "img_signature": sign(self.key, data, hash_method),
            "img_signature_hash_method": hash_method,
            "img_signature_key_type": self.key_type,
            "img_signature_certificate_uuid": self.certificate_uuid,
        }


def store_certificate(directory: Path, cert: x509.Certificate) -> str:
    """Put `cert` into the certificate directory; its uuid."""
    name = str(uuid.uuid4())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return name


def signer(directory: Path, key_type: str = "RSA-PSS", **validity: Any) -> Signer:
    key = private_key(key_type)
    return Signer(key_type, key, store_certificate(directory, certificate(key, **validity)))
