"""Tokens: authenticate (password or token method), scope, validate and revoke.

A token is 32 random bytes shown once to the client; the database keeps only its SHA-256, so
tokens cannot be forged or recovered from a copy of the database. Roles are resolved at validation
time from the current assignments, so removing a role or disabling a user or project takes effect
on the next request, on every API node.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, RowMapping, Select, bindparam, delete, insert, or_, select
from sqlalchemy.sql.selectable import NamedFromClause

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.tables import (
    domains,
    projects,
    role_assignments,
    role_implications,
    roles,
    tokens,
    users,
)
from spyglass.errors import Invalid, NotFound, Unauthorized
from spyglass.identity import throttle
from spyglass.identity.passwords import verify_password
from spyglass.identity.throttle import Attempt
from spyglass.timeutil import isotime_micro, utcnow

NOT_AUTHENTICATED = "The request you have made requires authentication."


@dataclass(frozen=True)
class Scope:
    project: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None


@dataclass(frozen=True)
class TokenInfo:
    user: dict[str, Any]
    user_domain: dict[str, Any]
    methods: list[str]
    audit_id: str
    issued_at: datetime
    expires_at: datetime
    project: dict[str, Any] | None = None
    project_domain: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None
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


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(conn: Connection, table: Any, **where: Any) -> dict[str, Any] | None:
    stmt = select(table).where(*(table.c[k] == v for k, v in where.items()))
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


# ---- resolving names in an auth request ---------------------------------------------------------


def _given(ref: dict[str, Any], key: str) -> str | None:
    """An id or name from an auth request, or None when absent.

    Stored ids and names never hold NUL (PostgreSQL cannot even compare one): such a value names
    nothing, so it is refused as an unknown name is, before any query."""
    value = ref.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(f"Invalid input for field '{key}': {value!r} is not a string.")
    if "\x00" in value:
        raise Unauthorized(NOT_AUTHENTICATED)
    return value


def _lookup(conn: Connection, table: Any, ref: dict[str, Any], what: str) -> dict[str, Any] | None:
    """The row a `{"id"}` or `{"name", "domain"}` reference names, or None (also for a missing domain)."""
    entity_id, name = _given(ref, "id"), _given(ref, "name")
    if entity_id:
        return _row(conn, table, id=entity_id)
    if name:
        domain = _domain_row(conn, ref.get("domain"))
        return _row(conn, table, name=name, domain_id=domain["id"]) if domain else None
    raise Invalid(f"A {what} must be given by id, or by name and domain.")


def _domain_row(conn: Connection, ref: Any) -> dict[str, Any] | None:
    if not isinstance(ref, dict):
        raise Invalid("A domain must be given by id or name.")
    domain_id, name = _given(ref, "id"), _given(ref, "name")
    if not (domain_id or name):
        raise Invalid("A domain must be given by id or name.")
    return _row(conn, domains, id=domain_id) if domain_id else _row(conn, domains, name=name)


def _find_domain(conn: Connection, ref: Any) -> dict[str, Any]:
    found = _domain_row(conn, ref)
    if found is None:
        raise Unauthorized(NOT_AUTHENTICATED)
    return found


def _find_project(conn: Connection, ref: Any) -> dict[str, Any]:
    if not isinstance(ref, dict):
        raise Invalid("The project scope must be an object.")
    project = _lookup(conn, projects, ref, "project")
    if project is None:
        raise Unauthorized(NOT_AUTHENTICATED)
    return project


# ---- roles ------------------------------------------------------------------------------------------


def effective_roles(
    conn: Connection, user_id: str, *, project_id: str | None = None, domain_id: str | None = None
) -> list[dict[str, str]]:
    """The user's roles on the project or domain, with implied roles added (admin > member > reader)."""
    where = [role_assignments.c.user_id == user_id]
    if project_id is not None:
        where.append(role_assignments.c.project_id == project_id)
    else:
        where.append(role_assignments.c.domain_id == domain_id)
    direct = set(conn.execute(select(role_assignments.c.role_id).where(*where)).scalars())
    return expand_roles(conn, direct)


def expand_roles(conn: Connection, role_ids: set[str]) -> list[dict[str, str]]:
    edges: dict[str, list[str]] = {}
    for prior, implied in conn.execute(select(role_implications)):
        edges.setdefault(prior, []).append(implied)
    seen: set[str] = set()
    pending = list(role_ids)
    while pending:
        role_id = pending.pop()
        if role_id in seen:
            continue
        seen.add(role_id)
        pending.extend(edges.get(role_id, []))
    if not seen:
        return []
    rows = conn.execute(select(roles.c.id, roles.c.name).where(roles.c.id.in_(seen)).order_by(roles.c.name))
    return [{"id": r.id, "name": r.name} for r in rows]


# ---- issuing ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Authenticated:
    user: dict[str, Any]
    methods: list[str]
    old_token: dict[str, Any] | None = None
    throttle_key: str | None = None


def uses_password(body: Any) -> bool:
    """Whether an auth request asks for a password check (the costly kind)."""
    auth = body.get("auth") if isinstance(body, dict) else None
    identity = auth.get("identity") if isinstance(auth, dict) else None
    methods = identity.get("methods") if isinstance(identity, dict) else None
    return isinstance(methods, list) and "password" in methods


def _authenticate(conn: Connection, identity: Any, attempt: Attempt | None) -> _Authenticated:
    """Check the identity part of an auth request."""
    if not isinstance(identity, dict) or not isinstance(identity.get("methods"), list):
        raise Invalid("Expecting to find identity with methods in auth.")
    methods = identity["methods"]
    if "password" in methods:
        user, key = _password_user(conn, identity.get("password"), attempt)
        return _Authenticated(user, ["password"], throttle_key=key)
    if "token" in methods:
        ref = identity.get("token")
        token_id = ref.get("id") if isinstance(ref, dict) else None
        if not isinstance(token_id, str):
            raise Invalid("Expecting to find id in token.")
        try:
            old = _token_row(conn, token_id)
        except NotFound as exc:
            raise Unauthorized(NOT_AUTHENTICATED) from exc
        token_user = _row(conn, users, id=old["user_id"])
        if token_user is None:
            raise Unauthorized(NOT_AUTHENTICATED)
        return _Authenticated(token_user, ["token"], old_token=old)
    raise Unauthorized("Unsupported authentication method.")


class _WrongPassword(Unauthorized):
    """A failed password login, with what the throttle counts it against."""

    def __init__(self, key: str, named: str) -> None:
        super().__init__(NOT_AUTHENTICATED)
        self.key = key
        self.named = named


def _password_user(conn: Connection, password: Any, attempt: Attempt | None) -> tuple[dict[str, Any], str]:
    """The user a password login names and its throttle key, if the password matches."""
    user_ref = password.get("user") if isinstance(password, dict) else None
    if not isinstance(user_ref, dict):
        raise Invalid("Expecting to find user in password.")
    user = _lookup(conn, users, user_ref, "user")
    key = throttle.subject(user_ref, user)
    if attempt is not None:
        throttle.check(conn, attempt, key)
    secret = user_ref.get("password")
    if not isinstance(secret, str):
        raise Unauthorized(NOT_AUTHENTICATED)
    # Checked even when there is no such user (against a dummy hash): the same time either way.
    matches = verify_password(user["password_hash"] if user else None, secret)
    if user is None or not matches:
        raise _WrongPassword(key, repr(user_ref.get("name") or user_ref.get("id"))[:80])
    return user, key


def _check_enabled(conn: Connection, user: dict[str, Any]) -> dict[str, Any]:
    domain = _row(conn, domains, id=user["domain_id"])
    if not user["enabled"] or domain is None or not domain["enabled"]:
        raise Unauthorized(NOT_AUTHENTICATED)
    return domain


def _resolve_scope(conn: Connection, user: dict[str, Any], scope: Any) -> Scope:
    if scope in (None, "unscoped"):
        default = user.get("default_project_id")
        if scope is None and default:
            project = _row(conn, projects, id=default)
            if project and project["enabled"] and effective_roles(conn, user["id"], project_id=default):
                return Scope(project=project)
        return Scope()
    if not isinstance(scope, dict):
        raise Invalid("The scope must be an object.")
    if "project" in scope:
        project = _find_project(conn, scope["project"])
        domain = _row(conn, domains, id=project["domain_id"])
        if not project["enabled"] or domain is None or not domain["enabled"]:
            raise Unauthorized(f"Project {project['id']} is disabled.")
        if not effective_roles(conn, user["id"], project_id=project["id"]):
            raise Unauthorized(f"User {user['id']} has no access to project {project['id']}")
        return Scope(project=project)
    if "domain" in scope:
        domain = _find_domain(conn, scope["domain"])
        if not domain["enabled"] or not effective_roles(conn, user["id"], domain_id=domain["id"]):
            raise Unauthorized(f"User {user['id']} has no access to domain {domain['id']}")
        return Scope(domain=domain)
    if "system" in scope:
        raise Unauthorized("System scope is not supported; scope to the admin project instead.")
    raise Invalid("Unknown scope.")


def issue_token(
    db: Database, body: Any, ttl_seconds: int, attempt: Attempt | None = None
) -> tuple[str, TokenInfo]:
    """Authenticate a POST /v3/auth/tokens body and store a new token.

    With an `attempt`, failed password logins are throttled (spyglass.identity.throttle)."""
    auth = body.get("auth") if isinstance(body, dict) else None
    if not isinstance(auth, dict):
        raise Invalid("Expecting to find auth in request body.")
    secret = secrets.token_urlsafe(32)
    # Checking the password is deliberately slow (Argon2): do it in a read transaction so that it
    # never holds up writers, then store the token in a short write.
    try:
        with db.read() as conn:
            found = _authenticate(conn, auth.get("identity"), attempt)
            _check_enabled(conn, found.user)
            scope = _resolve_scope(conn, found.user, auth.get("scope"))
    except _WrongPassword as exc:
        if attempt is not None:
            throttle.record_failure(db, attempt, exc.key, exc.named)
        raise
    with db.write() as conn:
        if attempt is not None and found.throttle_key is not None:
            throttle.forget(conn, attempt, found.throttle_key)
        return secret, _store(conn, secret, found, scope, ttl_seconds)


def _store(conn: Connection, secret: str, found: _Authenticated, scope: Scope, ttl_seconds: int) -> TokenInfo:
    now = utcnow().replace(microsecond=0)
    expires = now + timedelta(seconds=ttl_seconds)
    methods, old = found.methods, found.old_token
    if old is not None:
        # A token obtained from a token never outlives the original.
        expires = min(expires, old["expires_at"])
        methods = sorted(set(old["methods"].split(",")) | set(methods))
    conn.execute(
        insert(tokens).values(
            token_hash=_hash(secret),
            audit_id=base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
            user_id=found.user["id"],
            project_id=scope.project["id"] if scope.project else None,
            domain_id=scope.domain["id"] if scope.domain else None,
            methods=",".join(methods),
            issued_at=now,
            expires_at=expires,
        )
    )
    try:
        # Re-checked in the same transaction: the user or project may have changed meanwhile.
        return _load(conn, secret)
    except NotFound as exc:
        raise Unauthorized(NOT_AUTHENTICATED) from exc


# ---- validating -------------------------------------------------------------------------------------


def _token_row(conn: Connection, secret: str) -> dict[str, Any]:
    row = _row(conn, tokens, token_hash=_hash(secret))
    if row is None or row["expires_at"] <= utcnow():
        raise NotFound("Could not find token.")
    return row


def _load(conn: Connection, secret: str) -> TokenInfo:
    rows = conn.execute(_TOKEN_STATEMENT, {"token_hash": _hash(secret)}).all()
    if not rows or rows[0].expires_at <= utcnow():
        raise NotFound("Could not find token.")
    return _token_info(rows)


def _token_info(rows: Sequence[Row[Any]]) -> TokenInfo:
    """The token from its rows (one per effective role); NotFound unless everything is enabled."""
    first = rows[0]._mapping
    user, user_domain = _part(first, _USER), _part(first, _USER_DOMAIN)
    project, project_domain = _part(first, _PROJECT), _part(first, _PROJECT_DOMAIN)
    domain = _part(first, _SCOPE_DOMAIN)
    role_list = [{"id": r.role_id, "name": r.role_name} for r in rows if r.role_id is not None]
    if not _usable(first, user, user_domain, project, project_domain, domain, role_list):
        raise NotFound("Could not find token.")
    assert user is not None and user_domain is not None
    info: dict[str, Any] = {}
    if project is not None:
        info = {"project": project, "project_domain": project_domain, "roles": role_list}
    elif domain is not None:
        info = {"domain": domain, "roles": role_list}
    return TokenInfo(
        user=user,
        user_domain=user_domain,
        methods=first["methods"].split(","),
        audit_id=first["audit_id"],
        issued_at=first["issued_at"],
        expires_at=first["expires_at"],
        **info,
    )


def _usable(
    token: RowMapping,
    user: dict[str, Any] | None,
    user_domain: dict[str, Any] | None,
    project: dict[str, Any] | None,
    project_domain: dict[str, Any] | None,
    domain: dict[str, Any] | None,
    role_list: list[dict[str, str]],
) -> bool:
    """The user and the token's scope are enabled, and a scoped token still confers a role."""
    if not _enabled(user) or not _enabled(user_domain):
        return False
    if token["project_id"] is not None:
        return _enabled(project) and _enabled(project_domain) and bool(role_list)
    if token["domain_id"] is not None:
        return _enabled(domain) and bool(role_list)
    return True


def _enabled(entity: dict[str, Any] | None) -> bool:
    return entity is not None and bool(entity["enabled"])


def _part(row: RowMapping, table: NamedFromClause[Any]) -> dict[str, Any] | None:
    """One joined entity of the token statement, or None when the outer join found nothing."""
    prefix = f"{table.name}__"
    if row[f"{prefix}id"] is None:
        return None
    return {c.name: row[f"{prefix}{c.name}"] for c in table.c if c.name != "password_hash"}


def _labelled(table: NamedFromClause[Any]) -> list[Any]:
    return [c.label(f"{table.name}__{c.name}") for c in table.c if c.name != "password_hash"]


def _token_statement() -> Select[Any]:
    """Everything validation reads, in one statement built once.

    The token, its user and the user's domain, the scope (project and its domain, or a domain) and
    the effective roles, one row per role: the role ids granted on the scope, closed over the implied
    roles by a recursive query. Nothing is cached between requests, so a revoked token, a disabled
    user, project or domain and a removed assignment or implication count on the next request on
    every node.
    """
    granted = (
        select(role_assignments.c.role_id)
        .join(tokens, role_assignments.c.user_id == tokens.c.user_id)
        .where(
            tokens.c.token_hash == bindparam("token_hash"),
            or_(
                role_assignments.c.project_id == tokens.c.project_id,
                role_assignments.c.domain_id == tokens.c.domain_id,
            ),
        )
        .cte("effective_roles", recursive=True)
    )
    implied = select(role_implications.c.implied_role_id).join(
        granted, role_implications.c.prior_role_id == granted.c.role_id
    )
    # UNION, not UNION ALL: a cycle of implications ends once no new role id turns up.
    effective = granted.union(implied)
    joined = (
        tokens.join(_USER, _USER.c.id == tokens.c.user_id)
        .join(_USER_DOMAIN, _USER_DOMAIN.c.id == _USER.c.domain_id)
        .outerjoin(_PROJECT, _PROJECT.c.id == tokens.c.project_id)
        .outerjoin(_PROJECT_DOMAIN, _PROJECT_DOMAIN.c.id == _PROJECT.c.domain_id)
        .outerjoin(_SCOPE_DOMAIN, _SCOPE_DOMAIN.c.id == tokens.c.domain_id)
        .outerjoin(roles, roles.c.id.in_(select(effective.c.role_id)))
    )
    return (
        select(
            tokens,
            *_labelled(_USER),
            *_labelled(_USER_DOMAIN),
            *_labelled(_PROJECT),
            *_labelled(_PROJECT_DOMAIN),
            *_labelled(_SCOPE_DOMAIN),
            roles.c.id.label("role_id"),
            roles.c.name.label("role_name"),
        )
        .select_from(joined)
        .where(tokens.c.token_hash == bindparam("token_hash"))
        .order_by(roles.c.name)
    )


_USER = users.alias("user")
_USER_DOMAIN = domains.alias("user_domain")
_PROJECT = projects.alias("project")
_PROJECT_DOMAIN = domains.alias("project_domain")
_SCOPE_DOMAIN = domains.alias("scope_domain")
_TOKEN_STATEMENT = _token_statement()


def validate_token(db: Database, secret: str) -> TokenInfo:
    """The token's current identity; raises NotFound when it is unknown, expired or revoked."""
    with db.read() as conn:
        return _load(conn, secret)


def authenticate_request(db: Database, secret: str) -> RequestContext:
    """The caller a request's X-Auth-Token names, read in one statement."""
    try:
        with db.read_one_statement() as conn:
            return _load(conn, secret).context()
    except NotFound as exc:
        raise Unauthorized(NOT_AUTHENTICATED) from exc


def revoke_token(db: Database, secret: str) -> None:
    with db.write() as conn:
        _token_row(conn, secret)
        conn.execute(delete(tokens).where(tokens.c.token_hash == _hash(secret)))


def revoke_user_tokens(conn: Connection, user_id: str) -> None:
    conn.execute(delete(tokens).where(tokens.c.user_id == user_id))


def purge_expired(db: Database) -> int:
    with db.write() as conn:
        return conn.execute(delete(tokens).where(tokens.c.expires_at <= utcnow())).rowcount


# ---- rendering ---------------------------------------------------------------------------------------


def _ref(entity: dict[str, Any], domain: dict[str, Any]) -> dict[str, Any]:
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
    services = [
        ("identity", "keystone", f"{base_url}/identity/v3/"),
        ("image", "glance", f"{base_url}/image"),
    ]
    catalog = []
    for service_type, name, url in services:
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
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"service:{url}").hex,
                "type": service_type,
                "name": name,
            }
        )
    return catalog
