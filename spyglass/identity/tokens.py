"""Issuing a token: authenticate a POST /v3/auth/tokens body (password or token method), resolve its
scope, and store the new token. What a token stands for once issued is token_info.py.

A token is 32 random bytes shown once to the client; the database keeps only its SHA-256, so
tokens cannot be forged or recovered from a copy of the database.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from spyglass.db.engine import Database
from spyglass.errors import Invalid, NotFound, Unauthorized
from spyglass.identity import throttle, token_queries
from spyglass.identity.inputs import Row
from spyglass.identity.passwords import verify_password
from spyglass.identity.queries import Kind
from spyglass.identity.role_queries import effective_roles
from spyglass.identity.throttle import Attempt
from spyglass.identity.token_info import NOT_AUTHENTICATED, TokenInfo, load, stored_token, token_hash
from spyglass.identity.token_queries import StoredToken, entity
from spyglass.timeutil import utcnow


@dataclass(frozen=True)
class Scope:
    project: Row | None = None
    domain: Row | None = None


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


def _named(conn: Connection, kind: Kind, ref: dict[str, Any], missing: str) -> Row | None:
    """The row a `{"id"}` or `{"name"}` reference names (a project's or user's name within the
    `{"domain"}` it also gives), or None (also for a missing domain)."""
    entity_id, name = _given(ref, "id"), _given(ref, "name")
    if entity_id:
        return entity(conn, kind, id=entity_id)
    if not name:
        raise Invalid(missing)
    if kind == "domain":
        return entity(conn, kind, name=name)
    domain = _domain_row(conn, ref.get("domain"))
    return entity(conn, kind, name=name, domain_id=domain["id"]) if domain else None


def _lookup(conn: Connection, kind: Kind, ref: dict[str, Any], what: str) -> Row | None:
    return _named(conn, kind, ref, f"A {what} must be given by id, or by name and domain.")


def _domain_row(conn: Connection, ref: Any) -> Row | None:
    if not isinstance(ref, dict):
        raise Invalid(_DOMAIN_MISSING)
    return _named(conn, "domain", ref, _DOMAIN_MISSING)


_DOMAIN_MISSING = "A domain must be given by id or name."


def _find_domain(conn: Connection, ref: Any) -> Row:
    found = _domain_row(conn, ref)
    if found is None:
        raise Unauthorized(NOT_AUTHENTICATED)
    return found


def _find_project(conn: Connection, ref: Any) -> Row:
    if not isinstance(ref, dict):
        raise Invalid("The project scope must be an object.")
    project = _lookup(conn, "project", ref, "project")
    if project is None:
        raise Unauthorized(NOT_AUTHENTICATED)
    return project


# ---- issuing ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Authenticated:
    user: Row
    methods: list[str]
    old_token: StoredToken | None = None
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
            old = stored_token(conn, token_id)
        except NotFound as exc:
            raise Unauthorized(NOT_AUTHENTICATED) from exc
        token_user = entity(conn, "user", id=old.user_id)
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


def _password_user(conn: Connection, password: Any, attempt: Attempt | None) -> tuple[Row, str]:
    """The user a password login names and its throttle key, if the password matches."""
    user_ref = password.get("user") if isinstance(password, dict) else None
    if not isinstance(user_ref, dict):
        raise Invalid("Expecting to find user in password.")
    user = _lookup(conn, "user", user_ref, "user")
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


def _check_enabled(conn: Connection, user: Row) -> Row:
    domain = entity(conn, "domain", id=user["domain_id"])
    if not user["enabled"] or domain is None or not domain["enabled"]:
        raise Unauthorized(NOT_AUTHENTICATED)
    return domain


def _resolve_scope(conn: Connection, user: Row, scope: Any) -> Scope:
    if scope in (None, "unscoped"):
        default = user.get("default_project_id")
        if scope is None and default:
            project = entity(conn, "project", id=default)
            if project and project["enabled"] and effective_roles(conn, user["id"], project_id=default):
                return Scope(project=project)
        return Scope()
    if not isinstance(scope, dict):
        raise Invalid("The scope must be an object.")
    if "project" in scope:
        project = _find_project(conn, scope["project"])
        domain = entity(conn, "domain", id=project["domain_id"])
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
        expires = min(expires, old.expires_at)
        methods = sorted(set(old.methods.split(",")) | set(methods))
    token = StoredToken(
        token_hash=token_hash(secret),
        audit_id=base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        user_id=found.user["id"],
        project_id=scope.project["id"] if scope.project else None,
        domain_id=scope.domain["id"] if scope.domain else None,
        methods=",".join(methods),
        issued_at=now,
        expires_at=expires,
    )
    token_queries.insert_token(conn, token)
    try:
        # Re-checked in the same transaction: the user or project may have changed meanwhile.
        return load(conn, secret)
    except NotFound as exc:
        raise Unauthorized(NOT_AUTHENTICATED) from exc
