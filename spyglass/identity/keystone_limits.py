"""Unified limits read from an external Keystone (`identity = "keystone"`): the registered limits of
the `image` service and a project's own limits, for the image side's quotas (spyglass.images.quotas).

Read through the service user's system-scoped keystoneauth1 session (a project-scoped token would
see its own project's limits only), and kept `limits_cache_time` seconds: a limit changed in
Keystone applies on every node within that time. Past it, Keystone is asked again; a Keystone that
does not answer then gets `KeystoneUnavailable` (503), never "unlimited" by accident.

Why not oslo.limit (README "Quotas"): its Enforcer reads the process-wide `cfg.CONF` and keeps one
openstacksdk connection per process, so two apps of one process cannot use two Keystones; each
Enforcer looks its endpoint and the enforcement model up again (four calls before the first limit),
and caches for its own lifetime, with no expiry; it compares in the unit Glance passes (MiB), where
Spyglass checks bytes under its own lock; and it counts a resource with no registered limit as 0,
where Spyglass, as documented, counts it unlimited. What is kept from it: the same two reads
(registered limits and the project's limits of the service and region) and its 413 text.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session

from spyglass.identity.keystone import KeystoneUnavailable, service_session, v3_url
from spyglass.keystone_settings import KeystoneAuthtoken

SERVICE_TYPE = "image"
UNREADABLE = "The identity service (Keystone) cannot be reached to read the quota limits; try again later."
# Projects whose limits are held at most (the least recently used go first).
PROJECTS_KEPT = 10000


@dataclass(frozen=True)
class _Registered:
    """The image service's registered limits that apply in the region, by resource:
    (the region of the registered limit, or None, and its default)."""

    service_id: str | None
    defaults: Mapping[str, tuple[str | None, int]]
    read_at: float


class KeystoneLimits:
    """A project's limits of the image service in `region`, as Keystone's flat model gives them:
    its own limit where it has one, else the registered default; -1 (unlimited) and resources
    with no registered limit are left out."""

    def __init__(
        self,
        session: ks_session.Session,
        auth_url: str,
        region: str,
        cache_time: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.base = v3_url(auth_url)
        self.region = region
        self.cache_time = cache_time
        self.clock = clock
        self._registered: _Registered | None = None
        self._projects: OrderedDict[str, tuple[float, dict[str, tuple[str | None, int]]]] = OrderedDict()
        self._lock = threading.Lock()

    def limits(self, project_id: str) -> dict[str, int]:
        registered = self._registered_limits()
        if not registered.defaults:
            return {}
        assert registered.service_id is not None
        own = self._project_limits(registered.service_id, project_id)
        found: dict[str, int] = {}
        for name, (region, default) in registered.defaults.items():
            # A project limit belongs to the registered limit of its service, region and resource.
            override = own.get(name)
            value = override[1] if override is not None and override[0] == region else default
            if value >= 0:
                found[name] = value
        return found

    def _fresh(self, read_at: float) -> bool:
        return self.clock() - read_at < self.cache_time

    def _registered_limits(self) -> _Registered:
        with self._lock:
            cached = self._registered
        if cached is not None and self._fresh(cached.read_at):
            return cached
        now = self.clock()
        services = {s["id"] for s in self._get("/services?" + urlencode({"type": SERVICE_TYPE}))["services"]}
        listed = self._get("/registered_limits")["registered_limits"]
        entries = [
            e for e in listed if e["service_id"] in services and e.get("region_id") in (None, self.region)
        ]
        limited = sorted({e["service_id"] for e in entries})
        if len(limited) > 1:
            # oslo.limit would ask for the endpoint; Spyglass does not know which one is its own.
            raise KeystoneUnavailable(
                f"Keystone has registered limits for several services of type {SERVICE_TYPE}: "
                + ", ".join(limited),
                UNREADABLE,
            )
        service_id = limited[0] if limited else None
        defaults = _by_region(entries, "default_limit", self.region)
        fetched = _Registered(service_id, defaults, now)
        with self._lock:
            self._registered = fetched
        return fetched

    def _project_limits(self, service_id: str, project_id: str) -> dict[str, tuple[str | None, int]]:
        with self._lock:
            cached = self._projects.get(project_id)
            if cached is not None and self._fresh(cached[0]):
                self._projects.move_to_end(project_id)
                return cached[1]
        now = self.clock()
        query = urlencode({"service_id": service_id, "project_id": project_id})
        own = _by_region(self._get("/limits?" + query)["limits"], "resource_limit", self.region)
        with self._lock:
            self._projects[project_id] = (now, own)
            self._projects.move_to_end(project_id)
            while len(self._projects) > PROJECTS_KEPT:
                self._projects.popitem(last=False)
        return own

    def _get(self, path: str) -> Any:
        try:
            response = self.session.get(self.base + path, raise_exc=False, authenticated=True)
        except ks_exceptions.ClientException as exc:
            # Connection refused or timed out, or the service user's own login failed.
            raise KeystoneUnavailable(f"{type(exc).__name__}: {exc}", UNREADABLE) from exc
        if response.status_code != 200:
            raise KeystoneUnavailable(f"Keystone answered {response.status_code} to GET {path}", UNREADABLE)
        return response.json()


def _by_region(entries: list[dict[str, Any]], value: str, region: str) -> dict[str, tuple[str | None, int]]:
    """resource name -> (region, value) of the entries that apply in `region`: one of the region
    before one of no region; one of another region not at all."""
    found: dict[str, tuple[str | None, int]] = {}
    for entry in entries:
        where = entry.get("region_id")
        if where not in (None, region):
            continue
        name = entry["resource_name"]
        if name not in found or where is not None:
            found[name] = (where, int(entry[value]))
    return found


@functools.cache
def for_keystone(options: KeystoneAuthtoken, region: str, cache_time: float) -> KeystoneLimits:
    """One reader (and one cache) per Keystone, region and cache time in the process, shared by
    the API's requests and the background tasks."""
    return KeystoneLimits(service_session(options, system_scope=True), options.auth_url, region, cache_time)
