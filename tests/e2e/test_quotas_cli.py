"""Quotas end to end: limits set with the real `openstack` CLI (`registered limit create`, `limit
create|set`) through one API node take effect at once on another node over the same PostgreSQL, and
`openstack image quota show` (spyglass_osc) shows them with the project's usage."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Server, shared_database, start_server, stop_server


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with shared_database("spyglass_quotas") as url:
        yield url


def _pointed_at(node: Server, clouds: Path, directory: Path) -> Server:
    """The node, with a clouds.yaml of the same users whose auth_url is this node's."""
    data = yaml.safe_load(clouds.read_text())
    for cloud in data["clouds"].values():
        cloud["auth"]["auth_url"] = f"{node.url}/identity"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "clouds.yaml").write_text(yaml.safe_dump(data))
    return Server(node.url, directory, node.process, node.log, node.env)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[tuple[Server, Server]]:
    base = tmp_path_factory.mktemp("quota-nodes")
    env = {"SPYGLASS_DATABASE_URL": postgres_url}
    first = start_server(base / "data", env=env, log_name="node1.log")
    second = start_server(base / "data", env=env, log_name="node2.log")
    yield first, _pointed_at(second, first.clouds_yaml, base / "node2")
    stop_server(second)
    stop_server(first)


def _quota(node: Server, cloud: str) -> dict[str, tuple[int, int]]:
    rows = node.openstack_json(cloud, "image", "quota", "show")
    return {r["Resource"]: (r["Limit"], r["Usage"]) for r in rows}


def test_limits_set_with_the_cli_apply_at_once_on_every_node(nodes: tuple[Server, Server]) -> None:
    first, second = nodes
    registered = first.openstack_json(
        "spyglass-admin",
        "registered", "limit", "create",
        "--service", "image", "--default-limit", "100", "image_count_total",
    )  # fmt: skip
    assert registered["default_limit"] == 100
    assert registered["resource_name"] == "image_count_total"
    limit = first.openstack_json(
        "spyglass-admin",
        "limit", "create",
        "--project", "demo-a", "--service", "image", "--resource-limit", "2", "image_count_total",
    )  # fmt: skip
    assert limit["resource_limit"] == 2
    assert limit["project_id"] == second.project_id("spyglass-a")

    # Node 2 enforces what was set through node 1, without a restart.
    second.create_image("spyglass-a", "q1")
    second.create_image("spyglass-a", "q2")
    refused = second.refused_create("spyglass-a", "q3")
    assert "over a limit" in refused.stderr and "image_count_total" in refused.stderr
    assert _quota(second, "spyglass-a")["image_count_total"] == (2, 2)
    # demo-b has the default.
    assert _quota(first, "spyglass-b")["image_count_total"] == (100, 0)

    # Raised through node 2, it applies on node 1 at once.
    second.openstack("spyglass-admin", "limit", "set", "--resource-limit", "3", limit["id"])
    first.create_image("spyglass-a", "q3")
    assert _quota(first, "spyglass-a")["image_count_total"] == (3, 3)
    listed = first.openstack_json("spyglass-admin", "limit", "list")
    assert [(x["Resource Name"], x["Resource Limit"]) for x in listed] == [("image_count_total", 3)]

    # Deleting the project's limit leaves the default; the registered limit then goes too.
    second.openstack("spyglass-admin", "limit", "delete", limit["id"])
    assert _quota(first, "spyglass-a")["image_count_total"] == (100, 3)
    first.openstack("spyglass-admin", "registered", "limit", "delete", registered["id"])
    assert _quota(second, "spyglass-a")["image_count_total"] == (-1, 3)


def test_an_upload_past_image_size_total_is_refused_with_the_cli(
    nodes: tuple[Server, Server], tmp_path: Path
) -> None:
    first, second = nodes
    first.openstack(
        "spyglass-admin",
        "registered", "limit", "create",
        "--service", "image", "--default-limit", "1", "image_size_total",
    )  # fmt: skip
    small, large = tmp_path / "small", tmp_path / "large"
    small.write_bytes(os.urandom(512 * 1024))
    large.write_bytes(os.urandom(1024 * 1024))
    second.create_image("spyglass-b", "fits", "--file", str(small))
    refused = first.refused_create("spyglass-b", "too-big", "--file", str(large))
    assert "image_size_total" in refused.stderr
    assert _quota(second, "spyglass-b")["image_size_total"] == (1, 0)
