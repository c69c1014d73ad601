"""The `openstack` executable itself, as an operator following the README runs it.

The other CLI tests go through tests/e2e/warm_cli.py, which runs the same CLI code without
its start-up; this one starts the console script for every call."""

import hashlib
from pathlib import Path

from tests.e2e.conftest import Server


def test_demo_clouds_work_with_the_openstack_cli(server: Server, tmp_path: Path) -> None:
    for cloud in ("spyglass-admin", "spyglass-a", "spyglass-b"):
        token = server.openstack_json(cloud, "token", "issue", executable=True)
        assert token["project_id"]
    assert server.openstack_json("spyglass-a", "image", "list", executable=True) == []

    data = hashlib.sha512(b"smoke").digest() * 1024
    (tmp_path / "in.raw").write_bytes(data)
    image = server.openstack_json(
        "spyglass-a",
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(tmp_path / "in.raw"),
        "smoke",
        executable=True,
    )
    assert image["status"] == "active" and image["checksum"] == hashlib.md5(data).hexdigest()
    server.openstack(
        "spyglass-a", "image", "save", "--file", str(tmp_path / "out.raw"), image["id"], executable=True
    )
    assert (tmp_path / "out.raw").read_bytes() == data
