"""An operator's policy file applies to the metadata definition rules by their Glance names (lines
as in a Glance policy.yaml): a wider write rule lets members write, a narrower get_metadef_namespace
hides namespaces (404, as Glance answers when that rule refuses)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from spyglass.images.policy import use_policy_file
from spyglass.settings import Settings
from tests.conftest import Callers

NS = "/v2/metadefs/namespaces"


@pytest.fixture(autouse=True)
def _defaults_afterwards() -> Iterator[None]:
    yield
    use_policy_file(None)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "policy.yaml"
    path.write_text(
        '"metadef_admin": "role:admin or role:member"\n'
        '"get_metadef_namespace": "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"\n'
    )
    return dataclasses.replace(settings, policy_file=str(path))


def test_overrides(api: Callers) -> None:
    # metadef_admin is the rule every write default refers to: members of a project now write.
    created = api.alice.post(NS, json={"namespace": "Alpha::Own", "visibility": "public"})
    assert created.status_code == 201, created.text
    assert api.alice.post(f"{NS}/Alpha::Own/tags/t").status_code == 201
    assert api.admin.post(NS, json={"namespace": "Admin::Public", "visibility": "public"}).status_code == 201
    # Public namespaces of other projects are hidden by the narrower get_metadef_namespace.
    assert api.bob.get(f"{NS}/Alpha::Own").status_code == 404
    assert api.alice.get(f"{NS}/Alpha::Own").status_code == 200
    assert [n["namespace"] for n in api.bob.get(NS).json()["namespaces"]] == []
    assert sorted(n["namespace"] for n in api.alice.get(NS).json()["namespaces"]) == ["Alpha::Own"]
