"""First-start set-up: the default domain, the standard roles, an admin, and optionally a demo.

Every step is idempotent: it creates only what is missing, so restarting changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import Connection

from spyglass.db.engine import Database
from spyglass.identity import role_queries
from spyglass.identity.passwords import hash_password
from spyglass.identity.queries import id_by_name, insert_row, new_id

DEFAULT_DOMAIN_ID = "default"
# Keystone's bootstrap makes the same: `service` is the role of the users Nova and Cinder call as.
ROLE_NAMES = ("admin", "member", "reader", "service")
ADMIN_USER = "admin"
ADMIN_PROJECT = "admin"
DEMO_DOMAIN = "partners"
# (cloud name, project, user, domain name)
DEMO_ACCOUNTS = (
    ("spyglass-a", "demo-a", "alice", "Default"),
    ("spyglass-b", "demo-b", "bob", DEMO_DOMAIN),
)


@dataclass
class Credentials:
    """Passwords created by this run (nothing is listed for accounts that already existed)."""

    created: dict[str, tuple[str, str, str, str]] = field(
        default_factory=dict
    )  # cloud -> (user, password, project, domain)


def ensure_domain(conn: Connection, name: str, domain_id: str | None = None, description: str = "") -> str:
    existing = id_by_name(conn, "domain", name)
    if existing:
        return existing
    domain_id = domain_id or new_id()
    insert_row(conn, "domain", id=domain_id, name=name, description=description, enabled=True)
    return domain_id


def ensure_roles(conn: Connection) -> dict[str, str]:
    ids = {}
    for name in ROLE_NAMES:
        ids[name] = id_by_name(conn, "role", name) or new_id()
        if not id_by_name(conn, "role", name):
            insert_row(conn, "role", id=ids[name], name=name, description="")
    existing = set(role_queries.implications(conn))
    for prior, implied in (("admin", "member"), ("member", "reader")):
        if (ids[prior], ids[implied]) not in existing:
            role_queries.add_implication(conn, ids[prior], ids[implied])
    return ids


def ensure_project(conn: Connection, name: str, domain_id: str, description: str = "") -> str:
    existing = id_by_name(conn, "project", name, domain_id)
    if existing:
        return existing
    project_id = new_id()
    insert_row(
        conn, "project", id=project_id, name=name, domain_id=domain_id, description=description, enabled=True
    )
    return project_id


def ensure_user(
    conn: Connection, name: str, domain_id: str, project_id: str, role_id: str, password: str
) -> tuple[str, bool]:
    """The user's id, and whether it was created now (with this password)."""
    existing = id_by_name(conn, "user", name, domain_id)
    if existing:
        return existing, False
    user_id = new_id()
    insert_row(
        conn,
        "user",
        id=user_id,
        name=name,
        domain_id=domain_id,
        password_hash=hash_password(password),
        enabled=True,
        default_project_id=project_id,
        description="",
    )
    role_queries.add_assignment(conn, user_id, project_id, role_id)
    return user_id, True


def bootstrap(db: Database, *, admin_password: str = "", demo: bool = False) -> Credentials:
    creds = Credentials()
    with db.write() as conn:
        default = ensure_domain(conn, "Default", DEFAULT_DOMAIN_ID, "The default domain")
        role_ids = ensure_roles(conn)
        admin_project = ensure_project(conn, ADMIN_PROJECT, default, "Administrators")
        password = admin_password or secrets.token_urlsafe(16)
        _, created = ensure_user(conn, ADMIN_USER, default, admin_project, role_ids["admin"], password)
        if created:
            creds.created["spyglass-admin"] = (ADMIN_USER, password, ADMIN_PROJECT, "Default")
        if demo:
            partners = ensure_domain(conn, DEMO_DOMAIN, description="A second customer account (demo)")
            for cloud, project, user, domain_name in DEMO_ACCOUNTS:
                domain_id = default if domain_name == "Default" else partners
                project_id = ensure_project(conn, project, domain_id, "Demo project")
                pw = secrets.token_urlsafe(12)
                _, created = ensure_user(conn, user, domain_id, project_id, role_ids["member"], pw)
                if created:
                    creds.created[cloud] = (user, pw, project, domain_name)
    return creds
