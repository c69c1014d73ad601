"""SQL of `spyglass projects sync` (spyglass.sharing.project_sync): the local copy of an external
Keystone's domains and projects (kept in the identity tables, which the embedded identity API would
own, so that owner_suspended and domain shares read them as they read embedded projects), and the
project ids the image side still refers to."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from spyglass.db.tables import domains, image_members, images, projects
from spyglass.sharing.domain_shares import DOMAIN_PREFIX


def mirrored_projects(conn: Connection) -> dict[str, bool]:
    """Project id -> enabled, as last copied."""
    return {str(i): bool(e) for i, e in conn.execute(select(projects.c.id, projects.c.enabled))}


def referenced_projects(conn: Connection) -> set[str]:
    """Projects that share something or are shared with: members (not domain entries) and the owners
    of images others can reach. A deleted project stops being referenced once its hooks ran."""
    members = select(image_members.c.member_id).where(~image_members.c.member_id.startswith(DOMAIN_PREFIX))
    reachable = ("public", "community", "shared")
    owners = select(images.c.owner).where(images.c.owner.is_not(None), images.c.visibility.in_(reachable))
    return {str(row[0]) for row in conn.execute(members.union(owners))}


def mirrored_project(conn: Connection, project_id: str) -> bool | None:
    """One project's enabled flag as last copied; None when it is not copied."""
    found = conn.execute(select(projects.c.enabled).where(projects.c.id == project_id)).first()
    return None if found is None else bool(found[0])


def is_known(conn: Connection, project_id: str) -> bool:
    """Whether one project is copied or referenced (what `referenced_projects` lists, for one id)."""
    copied = select(projects.c.id).where(projects.c.id == project_id)
    member = select(image_members.c.member_id).where(image_members.c.member_id == project_id)
    reachable = ("public", "community", "shared")
    owner = select(images.c.owner).where(images.c.owner == project_id, images.c.visibility.in_(reachable))
    return any(conn.execute(query.limit(1)).first() is not None for query in (copied, member, owner))


def put_domain(conn: Connection, domain_id: str, name: str, enabled: bool, *, only_new: bool = False) -> None:
    """Copy a domain; `only_new`: only when missing (a project's domain, name not known yet)."""
    found = conn.execute(select(domains.c.id).where(domains.c.id == domain_id)).first()
    if found is not None and only_new:
        return
    if found is None:
        local_name = _free_domain_name(conn, name, domain_id)
        conn.execute(insert(domains).values(id=domain_id, name=local_name, enabled=enabled))
    else:
        conn.execute(update(domains).where(domains.c.id == domain_id).values(enabled=enabled))


def _free_domain_name(conn: Connection, name: str, domain_id: str) -> str:
    taken = conn.execute(select(domains.c.id).where(domains.c.name == name)).first()
    return name if taken is None else f"{name[:30]} {domain_id[:32]}"


def put_project(conn: Connection, project_id: str, name: str, domain_id: str, enabled: bool) -> None:
    found = conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first()
    if found is None:
        taken = conn.execute(
            select(projects.c.id).where(projects.c.domain_id == domain_id, projects.c.name == name)
        ).first()
        local_name = name if taken is None else f"{name[:30]} {project_id[:32]}"
        values = {"id": project_id, "name": local_name, "domain_id": domain_id, "enabled": enabled}
        conn.execute(insert(projects).values(**values))
    else:
        conn.execute(update(projects).where(projects.c.id == project_id).values(enabled=enabled))


def drop_project(conn: Connection, project_id: str) -> None:
    conn.execute(delete(projects).where(projects.c.id == project_id))
