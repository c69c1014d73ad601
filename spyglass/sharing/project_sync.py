"""`spyglass projects sync`: apply an external Keystone's project deletions and disablings to the
image side, by the same rules as the embedded identity's hooks (spyglass.identity.directory's
project_deleted_hooks and project_disabled_hooks, wired by spyglass.api.app): a deleted project's
memberships go and its images become private (data kept); a disabled owner's shares are suspended
until it is enabled again.

Safe to run from cron: each change is applied once, and a run with nothing new changes nothing.
Keystone's answer must list projects, or nothing is touched.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeGuard

from sqlalchemy import Connection

from spyglass.db.engine import Database
from spyglass.identity import directory
from spyglass.identity.keystone_directory import KeystoneDirectory, KeystoneProject
from spyglass.sharing import project_sync_queries as q
from spyglass.sharing.domain_shares import DOMAIN_PREFIX

# Projects read from Keystone at once when many are refreshed (shares in bulk).
READERS = 8
# Project ids are at most 64 characters in Keystone. Its own are 32 lowercase hex digits; ids from
# elsewhere (an LDAP or a migrated cloud) may hold letters, digits and a few marks, but never what
# would change the URL they are read at (`/`, `.` or `..` alone, `%`, `?`, `#`), a `:` (which
# marks a domain entry, DOMAIN_PREFIX), whitespace or a control character.
PROJECT_ID_MAX = 64
_PROJECT_ID = re.compile(r"[A-Za-z0-9_\-.@+=]+")


def is_project_id(value: object) -> TypeGuard[str]:
    """Whether this can be a project id that Keystone made (and is safe to ask Keystone about)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= PROJECT_ID_MAX
        and _PROJECT_ID.fullmatch(value) is not None
        and value.strip(".") != ""
        and not value.startswith(DOMAIN_PREFIX)
    )


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
    check refuses it as it refuses an unknown project of the embedded identity. Each project is read
    on its own (GET /v3/projects/<id>), several at a time: Keystone's list of projects may be cut
    short by its list_limit, and a project left out of it is not a project that is gone. Ids that
    cannot be Keystone's (is_project_id) are not asked about."""
    wanted = sorted({project_id for project_id in project_ids if is_project_id(project_id)})
    if not wanted:
        return
    if len(wanted) == 1:
        answers = [keystone.project(wanted[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(READERS, len(wanted))) as pool:
            answers = list(pool.map(keystone.project, wanted))
    with db.write() as conn:
        for project_id, project in zip(wanted, answers, strict=True):
            if project is None or project.is_domain:
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
    if not is_project_id(project_id) or (found is not None and found.is_domain):
        return report  # not a project id, or a domain acting as a project: nothing of the image side's
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
