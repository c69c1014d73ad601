"""SQL of `spyglass projects sync` (spyglass.sharing.project_sync): the local copy of an external
Keystone's domains and projects (kept in the identity tables, which the embedded identity API would
own, so that owner_suspended and domain shares read them as they read embedded projects), and the
project ids the image side still refers to."""

from __future__ import annotations

from sqlalchemy import CompoundSelect, Connection, delete, select

from spyglass.db import upsert
from spyglass.db.tables import domains, image_members, images, projects
from spyglass.sharing.domain_shares import DOMAIN_PREFIX

# Images of these visibilities can be reached by other projects: their owners are referenced.
REACHABLE = ("public", "community", "shared")


def mirrored_projects(conn: Connection) -> dict[str, bool]:
    """Project id -> enabled, as last copied."""
    return {str(i): bool(e) for i, e in conn.execute(select(projects.c.id, projects.c.enabled))}


def _references(project_id: str | None = None) -> CompoundSelect[tuple[str]]:
    """The project ids the image side refers to: members (not domain entries) and the owners of
    images others can reach; only `project_id` when given. One query for the list and for one id, so
    that they cannot disagree."""
    member = image_members.c.member_id
    members = select(member).where(~member.startswith(DOMAIN_PREFIX))
    owners = select(images.c.owner).where(images.c.owner.is_not(None), images.c.visibility.in_(REACHABLE))
    if project_id is not None:
        members = members.where(member == project_id)
        owners = owners.where(images.c.owner == project_id)
    return members.union(owners)


def referenced_projects(conn: Connection) -> set[str]:
    """Projects that share something or are shared with. A deleted project stops being referenced
    once its hooks ran."""
    return {str(row[0]) for row in conn.execute(_references())}


def mirrored_project(conn: Connection, project_id: str) -> bool | None:
    """One project's enabled flag as last copied; None when it is not copied."""
    found = conn.execute(select(projects.c.enabled).where(projects.c.id == project_id)).first()
    return None if found is None else bool(found[0])


def is_known(conn: Connection, project_id: str) -> bool:
    """Whether one project is copied or referenced (what `referenced_projects` lists, for one id)."""
    if mirrored_project(conn, project_id) is not None:
        return True
    return conn.execute(_references(project_id)).first() is not None


def put_domain(conn: Connection, domain_id: str, name: str, enabled: bool, *, only_new: bool = False) -> None:
    """Copy a domain; `only_new`: only when missing (a project's domain, name not known yet). An
    upsert: two nodes copying the same new domain at once both succeed."""
    found = conn.execute(select(domains.c.id).where(domains.c.id == domain_id)).first()
    if found is not None and only_new:
        return
    local_name = name if found is not None else _free_domain_name(conn, name, domain_id)
    stmt = upsert.insert(conn.dialect.name, domains).values(id=domain_id, name=local_name, enabled=enabled)
    if only_new:
        conn.execute(stmt.on_conflict_do_nothing())
    else:
        conn.execute(stmt.on_conflict_do_update(index_elements=[domains.c.id], set_={"enabled": enabled}))


def _free_domain_name(conn: Connection, name: str, domain_id: str) -> str:
    taken = conn.execute(select(domains.c.id).where(domains.c.name == name)).first()
    return name if taken is None else f"{name[:30]} {domain_id[:32]}"


def put_project(conn: Connection, project_id: str, name: str, domain_id: str, enabled: bool) -> None:
    """Copy a project, or its enabled flag when it is copied already. An upsert: two nodes copying
    the same new project at once both succeed."""
    taken = conn.execute(
        select(projects.c.id).where(
            projects.c.domain_id == domain_id, projects.c.name == name, projects.c.id != project_id
        )
    ).first()
    local_name = name if taken is None else f"{name[:30]} {project_id[:32]}"
    values = {"id": project_id, "name": local_name, "domain_id": domain_id, "enabled": enabled}
    stmt = upsert.insert(conn.dialect.name, projects).values(**values)
    conn.execute(stmt.on_conflict_do_update(index_elements=[projects.c.id], set_={"enabled": enabled}))


def drop_project(conn: Connection, project_id: str) -> None:
    conn.execute(delete(projects).where(projects.c.id == project_id))
