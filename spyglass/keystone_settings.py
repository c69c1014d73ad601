"""The `[keystone_authtoken]` settings of `identity = "keystone"`, named as keystonemiddleware's
auth_token options are, so that an operator who configured Glance recognises them.

Parsed and validated by spyglass.settings (shared kernel, as settings); used by spyglass.identity.keystone."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class KeystoneSettingsError(ValueError):
    """A `[keystone_authtoken]` option has a value Spyglass cannot run with."""


@dataclass(frozen=True)
class KeystoneAuthtoken:
    # Where tokens are validated, with the service user's credentials below.
    auth_url: str = ""
    # What 401 answers point clients to (WWW-Authenticate); empty: auth_url.
    www_authenticate_uri: str = ""
    username: str = ""
    password: str = ""
    project_name: str = ""
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    # Seconds a validated token is trusted without asking Keystone again. Longer: fewer calls to
    # Keystone, and a revoked token keeps working for up to this long. 0 turns the cache off.
    token_cache_time: int = 60
    # Tokens held in the cache at most (the least recently used go first).
    token_cache_size: int = 10000
    # Seconds to wait for Keystone before answering 503.
    http_connect_timeout: int = 5
    # A service token (X-Service-Token) must carry one of these roles to let an expired user token
    # through; with service_token_roles_required off, one without them is only logged and ignored.
    service_token_roles: tuple[str, ...] = ("service",)
    service_token_roles_required: bool = True

    @property
    def authenticate_uri(self) -> str:
        return self.www_authenticate_uri or self.auth_url

    def validate(self) -> KeystoneAuthtoken:
        needed = ("auth_url", "username", "password", "project_name")
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise KeystoneSettingsError(
                'identity = "keystone" needs [keystone_authtoken] ' + ", ".join(missing)
            )
        if self.token_cache_time < 0:
            raise KeystoneSettingsError("keystone_authtoken.token_cache_time must not be negative")
        if self.token_cache_size < 1:
            raise KeystoneSettingsError("keystone_authtoken.token_cache_size must be at least 1")
        if self.http_connect_timeout < 1:
            raise KeystoneSettingsError("keystone_authtoken.http_connect_timeout must be at least 1")
        return self


OPTIONS = {f.name: f for f in dataclasses.fields(KeystoneAuthtoken)}


def _coerce(name: str, raw: Any) -> Any:
    kind = OPTIONS[name].type
    try:
        if kind == "int":
            return int(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return text in ("1", "true", "yes", "on")
            raise ValueError(raw)
        if kind == "tuple[str, ...]":
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        return str(raw)
    except ValueError as exc:
        raise KeystoneSettingsError(f"keystone_authtoken.{name} has an invalid value {raw!r}") from exc


def parse(table: Mapping[str, Any], environ: Mapping[str, str], env_prefix: str) -> KeystoneAuthtoken:
    """The TOML table's options, then `<env_prefix>KEYSTONE_AUTHTOKEN_<OPTION>` variables over them."""
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in OPTIONS:
            raise KeystoneSettingsError(f"unknown option {key!r} in [keystone_authtoken]")
        values[key] = _coerce(key, raw)
    for name in OPTIONS:
        env_name = f"{env_prefix}KEYSTONE_AUTHTOKEN_{name.upper()}"
        if env_name in environ:
            values[name] = _coerce(name, environ[env_name])
    return KeystoneAuthtoken(**values)
