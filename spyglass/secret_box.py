"""Seals the secrets Spyglass must keep in its database (webhook signing secrets) under a key kept
outside it, so that a database dump alone does not reveal them.

AES-256-GCM, a fresh 96-bit nonce per value, the row's id as associated data (a sealed value copied
to another row does not open). A sealed value is `sealed:v1:` and the URL-safe base64 of nonce and
ciphertext; a value without that prefix is a clear secret from before sealing (`seal_clear`
seals those at start-up).

The key is 32 random bytes, base64, in `secret_key_file`, or by default data_dir/secret.key, which
the first start creates (0600). Nodes that share one database must share the key file.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from spyglass.file_modes import FILE_MODE
from spyglass.settings import Settings

PREFIX = "sealed:v1:"
KEY_BYTES = 32
NONCE_BYTES = 12


class SecretKeyError(Exception):
    """The key is missing or malformed, or a value was sealed under another key."""


@dataclass(frozen=True)
class SecretBox:
    key: bytes = field(repr=False)

    @classmethod
    def of(cls, settings: Settings) -> SecretBox:
        """The configured key file's key; the default file is created on first use."""
        if settings.secret_key_file:
            return cls(read_key(Path(settings.secret_key_file).expanduser()))
        return cls(read_key(ensure_key_file(settings.data_dir / "secret.key")))

    def seal(self, clear: str, row_id: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, clear.encode(), row_id.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, row_id: str) -> str:
        """The clear secret of a stored value, sealed or (from before sealing) clear."""
        if not is_sealed(stored):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
            clear = AESGCM(self.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], row_id.encode())
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SecretKeyError(
                "a stored secret does not open with this secret key: it was sealed under another key "
                "(do all nodes share secret_key_file?)"
            ) from exc
        return clear.decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def read_key(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise SecretKeyError(f"cannot read the secret key file {path}: {exc.strerror}") from exc
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretKeyError(f"the secret key file {path} must hold {KEY_BYTES} bytes in base64")
    return key


def ensure_key_file(path: Path) -> Path:
    """Create the key file (0600) unless it exists; processes starting at once agree on one key."""
    if path.exists():
        return path
    partial = path.with_name(f"{path.name}.{secrets.token_hex(8)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    with suppress(FileExistsError):
        os.link(partial, path)  # never replaces a key another process wrote first
    partial.unlink()
    return path
