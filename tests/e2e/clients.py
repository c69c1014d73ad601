"""The real client libraries, configured from the clouds.yaml that a running server wrote.

Only that file is read: no other clouds.yaml on the machine and no OS_* variable can leak in.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import glanceclient
import yaml
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from openstack import connection
from openstack.config import loader

from tests.e2e.conftest import Server


def cloud_auth(server: Server, cloud: str) -> dict[str, str]:
    """The `auth` section of one cloud in the server's clouds.yaml."""
    data = yaml.safe_load(server.clouds_yaml.read_text())
    auth: dict[str, str] = data["clouds"][cloud]["auth"]
    return auth


def sdk(server: Server, cloud: str) -> connection.Connection:
    """An openstacksdk Connection for one cloud of the server's clouds.yaml."""
    config = loader.OpenStackConfig(
        config_files=[str(server.clouds_yaml)], secure_files=[], vendor_files=[], load_envvars=False
    )
    return connection.Connection(config=config.get_one(cloud=cloud))


def keystone_session(server: Server, cloud: str) -> ks_session.Session:
    """A keystoneauth session with password auth, as a glanceclient user builds it."""
    return ks_session.Session(auth=v3.Password(**cloud_auth(server, cloud)))


def glance(server: Server, cloud: str) -> Any:
    """A python-glanceclient v2 client; the endpoint comes from the token's catalog."""
    return glanceclient.Client("2", session=keystone_session(server, cloud))


def random_file(path: Path, size: int) -> Path:
    """A file of `size` random bytes, written in 1 MiB pieces."""
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            piece = min(remaining, 1024 * 1024)
            handle.write(os.urandom(piece))
            remaining -= piece
    return path


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def sha512_of(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()
