"""`spyglass projects sync`: apply an external Keystone's project deletions and disablings to the
image side, by the same rules as the embedded identity's hooks (spyglass.identity.directory's
project_deleted_hooks and project_disabled_hooks, wired by spyglass.api.app): a deleted project's
memberships go and its images become private (data kept); a disabled owner's shares are suspended
until it is enabled again.

Safe to run from cron: each change is applied once, and a run with nothing new changes nothing.
Keystone's answer must list projects, or nothing is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from spyglass.db.engine import Database
from spyglass.identity import directory
from spyglass.identity.keystone_directory import KeystoneDirectory, KeystoneProject
from spyglass.sharing import project_sync_queries as q

# More new members than this in one call: their projects are read from Keystone's list of projects.
LIST_ABOVE = 10


class EmptyProjectList(RuntimeError):
    """Keystone listed no project at all: more likely a wrong scope than a cloud without projects."""


@dataclass
class SyncReport:
    deleted: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)
    added: int = 0


def sync_projects(db: Database, keystone: KeystoneDirectory) -> SyncReport:
    listed = keystone.projects()
    if not listed:
        raise EmptyProjectList("Keystone listed no projects; nothing was changed")
    domains = keystone.domains()
    return apply(db, listed, domains)


def refresh_projects(db: Database, keystone: KeystoneDirectory, project_ids: list[str]) -> None:
    """Bring the local copy of these projects up to date from Keystone before they are checked
    (validate_member_ids): a project Keystone does not have is dropped from the copy, so the
    check refuses it as it refuses an unknown project of the embedded identity. Many projects at
    once (shares in bulk) are read from one list of Keystone's projects rather than one by one."""
    wanted = sorted(set(project_ids))
    if len(wanted) > LIST_ABOVE:
        listed = {project.id: project for project in keystone.projects()}
        found = {project_id: listed.get(project_id) for project_id in wanted}
    else:
        found = {project_id: keystone.project(project_id) for project_id in wanted}
    with db.write() as conn:
        for project_id, project in found.items():
            if project is None:
                q.drop_project(conn, project_id)
                continue
            q.put_domain(conn, project.domain_id, project.domain_id, True, only_new=True)
            q.put_project(conn, project.id, project.name, project.domain_id, project.enabled)


def apply(db: Database, listed: list[KeystoneProject], domains: list[dict[str, object]]) -> SyncReport:
    report = SyncReport()
    current = {p.id: p for p in listed}
    with db.write() as conn:
        for domain in domains:
            q.put_domain(conn, str(domain["id"]), str(domain["name"]), bool(domain.get("enabled", True)))
        mirrored = q.mirrored_projects(conn)
        gone = (set(mirrored) | q.referenced_projects(conn)) - set(current)
        for project_id in sorted(gone):
            _gone(conn, project_id, report)
        for project in listed:
            _present(conn, project, mirrored.get(project.id), report)
    return report


def apply_one(db: Database, project_id: str, found: KeystoneProject | None) -> SyncReport:
    """The rules of `apply` for one project, as Keystone has it now (`found`; None: Keystone has no
    such project): what a notification from Keystone's message bus leads to
    (spyglass.sharing.project_events). Applying it again changes nothing."""
    report = SyncReport()
    with db.write() as conn:
        if found is None:
            if q.is_known(conn, project_id):
                _gone(conn, project_id, report)
            return report
        q.put_domain(conn, found.domain_id, found.domain_id, True, only_new=True)
        _present(conn, found, q.mirrored_project(conn, found.id), report)
    return report


def _gone(conn: Connection, project_id: str, report: SyncReport) -> None:
    for hook in directory.project_deleted_hooks:
        hook(conn, project_id)
    q.drop_project(conn, project_id)
    report.deleted.append(project_id)


def _present(conn: Connection, project: KeystoneProject, was: bool | None, report: SyncReport) -> None:
    """`was`: enabled in the local copy before (None: not copied yet)."""
    if was is None:
        report.added += 1
    if not project.enabled and was is not False:
        for hook in directory.project_disabled_hooks:
            hook(conn, project.id)
        report.disabled.append(project.id)
    elif project.enabled and was is False:
        report.enabled.append(project.id)
    q.put_project(conn, project.id, project.name, project.domain_id, project.enabled)
