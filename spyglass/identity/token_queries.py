"""The SQL of tokens and failed logins: the rows an auth request names, the stored token, the one
statement that validates a token, revocation, and the failed-login counters of throttle.py.

Tokens are stored by their SHA-256 (`token_hash`); the secret itself never reaches these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, func, insert, or_, select
from sqlalchemy.sql.selectable import NamedFromClause

from spyglass.db.tables import (
    domains,
    identity_generation,
    login_failures,
    projects,
    role_assignments,
    role_implications,
    roles,
    users,
)
from spyglass.db.tables import tokens as tokens_table
from spyglass.identity.inputs import Row
from spyglass.identity.queries import TABLES, Kind

# ---- the rows an auth request names -------------------------------------------------------------------


def entity(conn: Connection, kind: Kind, **where: str) -> Row | None:
    """The whole row (a user's with its password hash) matching every column given, or None."""
    table = TABLES[kind]
    row = conn.execute(select(table).where(*(table.c[k] == v for k, v in where.items()))).mappings().first()
    return {str(k): v for k, v in row.items()} if row else None


# ---- stored tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredToken:
    token_hash: str
    audit_id: str
    user_id: str
    project_id: str | None
    domain_id: str | None
    methods: str
    issued_at: datetime
    expires_at: datetime


def token_row(conn: Connection, token_hash: str) -> StoredToken | None:
    found = conn.execute(select(tokens_table).where(tokens_table.c.token_hash == token_hash)).mappings()
    row = found.first()
    return StoredToken(**row) if row else None


def insert_token(conn: Connection, token: StoredToken) -> None:
    conn.execute(insert(tokens_table).values(**token.__dict__))


def delete_token(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(tokens_table).where(tokens_table.c.token_hash == token_hash))


def delete_user_tokens(conn: Connection, user_id: str) -> None:
    conn.execute(delete(tokens_table).where(tokens_table.c.user_id == user_id))


def delete_scoped_tokens(
    conn: Connection, *, project_id: str | None = None, domain_id: str | None = None
) -> None:
    """The tokens scoped to the project, or to the domain."""
    c = tokens_table.c
    where = c.project_id == project_id if project_id is not None else c.domain_id == domain_id
    conn.execute(delete(tokens_table).where(where))


def delete_expired_tokens(conn: Connection, now: datetime) -> int:
    return int(conn.execute(delete(tokens_table).where(tokens_table.c.expires_at <= now)).rowcount)


# ---- validation: one statement ------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRows:
    """What validation reads of a token: the stored token, the entities it names (None where the
    outer join found nothing) and its effective roles."""

    token: StoredToken
    user: Row | None
    user_domain: Row | None
    project: Row | None
    project_domain: Row | None
    domain: Row | None
    roles: list[dict[str, str]]
    # The identity generation these rows were read at (spyglass.identity.token_cache).
    generation: int


def token_rows(conn: Connection, token_hash: str) -> TokenRows | None:
    """The token and everything it names, read in one statement; None for an unknown token."""
    rows = conn.execute(_TOKEN_STATEMENT, {"token_hash": token_hash}).all()
    if not rows:
        return None
    first = rows[0]._mapping
    return TokenRows(
        token=StoredToken(**{c.name: first[c.name] for c in tokens_table.c}),
        user=_part(first, _USER),
        user_domain=_part(first, _USER_DOMAIN),
        project=_part(first, _PROJECT),
        project_domain=_part(first, _PROJECT_DOMAIN),
        domain=_part(first, _SCOPE_DOMAIN),
        roles=[{"id": r.role_id, "name": r.role_name} for r in rows if r.role_id is not None],
        generation=int(first["identity_generation"]),
    )


def generation(conn: Connection) -> int:
    """The identity generation: triggers move it on with every change that can refuse a token."""
    return int(conn.execute(_GENERATION_STATEMENT).scalar_one())


def _part(row: Any, table: NamedFromClause[Any]) -> Row | None:
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
    roles by a recursive query; and the identity generation, read in the same snapshot, which tells
    spyglass.identity.token_cache how long what it read stays true.
    """
    tokens = tokens_table
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
            _GENERATION_STATEMENT.scalar_subquery().label("identity_generation"),
        )
        .select_from(joined)
        .where(tokens.c.token_hash == bindparam("token_hash"))
        .order_by(roles.c.name)
    )


_GENERATION_STATEMENT = select(identity_generation.c.value).where(identity_generation.c.id == 1)
_USER = users.alias("user")
_USER_DOMAIN = domains.alias("user_domain")
_PROJECT = projects.alias("project")
_PROJECT_DOMAIN = domains.alias("project_domain")
_SCOPE_DOMAIN = domains.alias("scope_domain")
_TOKEN_STATEMENT = _token_statement()


# ---- failed logins ------------------------------------------------------------------------------------


def failures(
    conn: Connection, since: datetime, address: str, subject: str | None = None
) -> tuple[int, datetime | None]:
    """How many failures from the address (naming the subject, if given) came after `since`, and
    when the oldest of them was."""
    c = login_failures.c
    where = [c.address == address, *([c.subject == subject] if subject is not None else [])]
    stmt = select(func.count(), func.min(c.failed_at)).where(c.failed_at > since, *where)
    count, oldest = conn.execute(stmt).one()
    return int(count), oldest


def add_failure(conn: Connection, subject: str, address: str, now: datetime) -> None:
    conn.execute(insert(login_failures).values(subject=subject, address=address, failed_at=now))


def delete_failures_before(conn: Connection, cutoff: datetime) -> None:
    conn.execute(delete(login_failures).where(login_failures.c.failed_at <= cutoff))


def forget_failures(conn: Connection, subject: str, address: str) -> None:
    c = login_failures.c
    conn.execute(delete(login_failures).where(c.subject == subject, c.address == address))
