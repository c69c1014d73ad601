"""`spyglass keystone register` and `spyglass projects sync`, for identity = "keystone"."""

from __future__ import annotations

import os
import sys

from spyglass.api.app import connect_project_lifecycle
from spyglass.db.engine import Database
from spyglass.identity.keystone import KeystoneUnavailable, service_session
from spyglass.identity.keystone_directory import (
    KeystoneDirectory,
    admin_credentials,
    password_session,
)
from spyglass.settings import Settings
from spyglass.sharing.project_sync import EmptyProjectList, sync_projects


def _fail(message: str) -> int:
    print(f"spyglass: {message}", file=sys.stderr)
    return 1


def register(settings: Settings, public_url: str, region: str | None, cloud: str | None) -> int:
    """Create (idempotently) the image service and its endpoints, as an admin: the cloud named,
    else OS_* variables, else the [keystone_authtoken] service user."""
    try:
        credentials = admin_credentials(cloud, dict(os.environ))
    except ValueError as exc:
        return _fail(str(exc))
    if credentials is not None:
        directory = KeystoneDirectory(password_session(credentials), credentials["auth_url"])
    elif settings.keystone_authtoken.auth_url:
        options = settings.keystone_authtoken
        directory = KeystoneDirectory(service_session(options, system_scope=True), options.auth_url)
    else:
        return _fail("no Keystone: give --os-cloud, OS_* variables or [keystone_authtoken]")
    try:
        done = directory.register(public_url, region or settings.region)
    except KeystoneUnavailable as exc:
        return _fail(f"{exc.message} ({exc.detail})")
    what = ", ".join(done.created) or "nothing (already registered)"
    print(f"image service {done.service_id} at {public_url.rstrip('/')}: created or updated {what}")
    return 0


def sync(settings: Settings, db: Database) -> int:
    """Apply Keystone's deleted and disabled projects to the image side (safe from cron)."""
    if settings.identity != "keystone":
        return _fail('projects sync needs identity = "keystone"')
    options = settings.keystone_authtoken
    connect_project_lifecycle()
    try:
        directory = KeystoneDirectory(service_session(options, system_scope=True), options.auth_url)
        report = sync_projects(db, directory)
    except KeystoneUnavailable as exc:
        return _fail(f"{exc.message} ({exc.detail})")
    except EmptyProjectList as exc:
        return _fail(str(exc))
    print(
        f"projects sync: {len(report.deleted)} deleted, {len(report.disabled)} disabled, "
        f"{len(report.enabled)} enabled again, {report.added} new"
    )
    for project_id in report.deleted:
        print(f"  deleted in Keystone: {project_id} (memberships removed, images made private)")
    for project_id in report.disabled:
        print(f"  disabled in Keystone: {project_id} (its shares suspended)")
    return 0
