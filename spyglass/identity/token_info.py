"""What a token stands for: validating it (one statement, token_queries.token_rows), revoking it, and
rendering it as Keystone does. Issuing and scoping a token is tokens.py.

Roles are resolved at validation time from the current assignments. The API remembers a
validation for as long as token_cache.py may trust it: removing a role or disabling a user or
project counts within 0.5 s on every API node (at once on the node that made the change).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import NotFound, Unauthorized
from spyglass.identity import token_queries
from spyglass.identity.inputs import Row
from spyglass.identity.services import IDENTITY, IMAGE
from spyglass.identity.token_queries import StoredToken, TokenRows
from spyglass.timeutil import isotime_micro, utcnow

NOT_AUTHENTICATED = "The request you have made requires authentication."


@dataclass(frozen=True)
class TokenInfo:
    user: Row
    user_domain: Row
    methods: list[str]
    audit_id: str
    issued_at: datetime
    expires_at: datetime
    project: Row | None = None
    project_domain: Row | None = None
    domain: Row | None = None
    roles: list[dict[str, str]] = field(default_factory=list)

    def context(self) -> RequestContext:
        return RequestContext(
            user_id=self.user["id"],
            user_name=self.user["name"],
            project_id=self.project["id"] if self.project else None,
            project_name=self.project["name"] if self.project else "",
            domain_id=self.domain["id"] if self.domain else None,
            roles=frozenset(r["name"] for r in self.roles),
        )


def token_hash(secret: str) -> str:
    """What the database keeps of a token: its SHA-256, so a copy of the database yields no token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def stored_token(conn: Connection, secret: str) -> StoredToken:
    """The unexpired stored token, or NotFound."""
    row = token_queries.token_row(conn, token_hash(secret))
    if row is None or row.expires_at <= utcnow():
        raise NotFound("Could not find token.")
    return row


def load(conn: Connection, secret: str) -> TokenInfo:
    """The token's current identity, read in one statement; NotFound unless it is still usable."""
    return load_with_generation(conn, secret)[0]


def load_with_generation(conn: Connection, secret: str) -> tuple[TokenInfo, int]:
    """As `load`, with the identity generation read in the same statement (token_cache.py)."""
    found = token_queries.token_rows(conn, token_hash(secret))
    if found is None or found.token.expires_at <= utcnow() or not _usable(found):
        raise NotFound("Could not find token.")
    token = found.token
    assert found.user is not None and found.user_domain is not None
    info: dict[str, Any] = {}
    if found.project is not None:
        info = {"project": found.project, "project_domain": found.project_domain, "roles": found.roles}
    elif found.domain is not None:
        info = {"domain": found.domain, "roles": found.roles}
    loaded = TokenInfo(
        user=found.user,
        user_domain=found.user_domain,
        methods=token.methods.split(","),
        audit_id=token.audit_id,
        issued_at=token.issued_at,
        expires_at=token.expires_at,
        **info,
    )
    return loaded, found.generation


def _usable(found: TokenRows) -> bool:
    """The user and the token's scope are enabled, and a scoped token still confers a role."""
    if not _enabled(found.user) or not _enabled(found.user_domain):
        return False
    if found.token.project_id is not None:
        return _enabled(found.project) and _enabled(found.project_domain) and bool(found.roles)
    if found.token.domain_id is not None:
        return _enabled(found.domain) and bool(found.roles)
    return True


def _enabled(entity: Row | None) -> bool:
    return entity is not None and bool(entity["enabled"])


def validate_token(db: Database, secret: str) -> TokenInfo:
    """The token's current identity; raises NotFound when it is unknown, expired or revoked."""
    with db.read() as conn:
        return load(conn, secret)


def authenticate_request(db: Database, secret: str) -> tuple[TokenInfo, int]:
    """What a request's X-Auth-Token stands for and the identity generation it was read at, in one
    statement; Unauthorized unless the token is still usable."""
    try:
        with db.read_one_statement() as conn:
            return load_with_generation(conn, secret)
    except NotFound as exc:
        raise Unauthorized(NOT_AUTHENTICATED) from exc


def read_generation(db: Database) -> int:
    with db.read_one_statement() as conn:
        return token_queries.generation(conn)


def revoke_token(db: Database, secret: str) -> None:
    with db.write() as conn:
        stored_token(conn, secret)
        token_queries.delete_token(conn, token_hash(secret))


def purge_expired(db: Database) -> int:
    with db.write() as conn:
        return token_queries.delete_expired_tokens(conn, utcnow())


# ---- rendering ---------------------------------------------------------------------------------------


def _ref(entity: Row, domain: Row) -> dict[str, Any]:
    return {
        "id": entity["id"],
        "name": entity["name"],
        "domain": {"id": domain["id"], "name": domain["name"]},
    }


def render_token(info: TokenInfo, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
    token: dict[str, Any] = {
        "methods": info.methods,
        "user": {**_ref(info.user, info.user_domain), "password_expires_at": None},
        "audit_ids": [info.audit_id],
        "expires_at": isotime_micro(info.expires_at),
        "issued_at": isotime_micro(info.issued_at),
    }
    if info.project is not None and info.project_domain is not None:
        token["project"] = _ref(info.project, info.project_domain)
        token["is_domain"] = False
    elif info.domain is not None:
        token["domain"] = {"id": info.domain["id"], "name": info.domain["name"]}
    if info.project is not None or info.domain is not None:
        token["roles"] = info.roles
        if catalog is not None:
            token["catalog"] = catalog
    return {"token": token}


def build_catalog(base_url: str, region: str) -> list[dict[str, Any]]:
    """The service catalog: this server's identity and image endpoints, with stable ids."""
    services = [(IDENTITY, f"{base_url}/identity/v3/"), (IMAGE, f"{base_url}/image")]
    catalog = []
    for service, url in services:
        endpoints = [
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{interface}:{url}").hex,
                "interface": interface,
                "region_id": region,
                "url": url,
                "region": region,
            }
            for interface in ("public", "internal", "admin")
        ]
        catalog.append(
            {
                "endpoints": endpoints,
                # The same on every node, whatever its URL: limits refer to the service by it.
                "id": service.id,
                "type": service.type,
                "name": service.name,
            }
        )
    return catalog
