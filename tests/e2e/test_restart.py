"""Stop `spyglass serve` and start it again on the same data directory: nothing is lost."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import glanceclient
import pytest

from tests.e2e import conftest
from tests.e2e.clients import glance, keystone_session, sdk
from tests.e2e.conftest import start_server, stop_server

DATA = os.urandom(2 * 1024 * 1024 + 17)


def test_restart_keeps_images_data_users_tokens_and_clouds_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir)
    try:
        clouds_yaml = first.clouds_yaml.read_bytes()
        alice = sdk(first, "spyglass-a")
        private = alice.image.create_image(
            "kept", data=DATA, disk_format="raw", container_format="bare", visibility="private"
        )
        alice.image.add_tag(private.id, "durable")
        alice.close()
        public = sdk(first, "spyglass-admin").image.create_image(
            "kept-public",
            data=b"public bytes",
            disk_format="raw",
            container_format="bare",
            visibility="public",
        )
        bob_session = keystone_session(first, "spyglass-b")
        bob_token = bob_session.get_token()
    finally:
        stop_server(first)

    # The same port, so that the clouds.yaml written on the first start still points at the server.
    port = int(first.url.rsplit(":", 1)[1])
    monkeypatch.setattr(conftest, "free_port", lambda: port)
    second = start_server(data_dir)
    try:
        assert second.url == first.url
        assert second.clouds_yaml.read_bytes() == clouds_yaml
        assert "Created user" not in second.log.read_text()

        shown = second.openstack_json("spyglass-a", "image", "show", "kept")
        assert shown["id"] == private.id
        assert shown["status"] == "active"
        assert shown["visibility"] == "private"
        assert shown["tags"] == ["durable"]
        assert shown["checksum"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
        out = tmp_path / "kept.raw"
        second.openstack("spyglass-a", "image", "save", "--file", str(out), private.id)
        assert out.read_bytes() == DATA

        # Every demo user still signs in with the password in clouds.yaml.
        everything = {i.name for i in sdk(second, "spyglass-admin").image.images()}
        assert {"kept", "kept-public"} <= everything
        bob = glance(second, "spyglass-b")
        assert [i["id"] for i in bob.images.list()] == [public.id]
        assert b"".join(bob.images.data(public.id)) == b"public bytes"

        # A token issued before the restart is still valid after it.
        assert bob_session.get_token() == bob_token
        bob_before = glanceclient.Client("2", session=bob_session)
        assert [i["id"] for i in bob_before.images.list()] == [public.id]
    finally:
        stop_server(second)
