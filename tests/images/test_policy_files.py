"""Policy files over the API: Glance 33's defaults, the overrides the README shows, and the start-up
refusals. The default expectations are written from Glance 33's default rules
(glance/policies/base.py and image.py); the overrides are an operator's existing policy.yaml lines."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from spyglass import cli
from spyglass.api.app import create_app
from spyglass.images.policy import use_policy_file
from spyglass.images.policy_language import PolicyFileError
from spyglass.settings import Settings
from tests.api.helpers import active, message
from tests.conftest import Callers, World

READERS_DOWNLOAD = '"download_image": "role:member or role:reader"\n'
ONLY_ADMINS_SHARE = (
    '"add_member": "rule:context_is_admin"\n'
    '"communitize_image": "rule:context_is_admin"\n'
    '"publicize_image": "role:admin"\n'
)


@pytest.fixture
def policy_text() -> str:
    return ""


@pytest.fixture(autouse=True)
def _defaults_afterwards() -> Iterator[None]:
    # The rules are the process's: code that runs without an app must find the defaults again.
    yield
    use_policy_file(None)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, policy_text: str) -> Settings:
    if not policy_text:
        return settings
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text)
    return dataclasses.replace(settings, policy_file=str(path))


def _images(api: Callers) -> dict[str, str]:
    """An image of rita's own project (alpha), a public and a community image of another project."""
    return {
        "own": active(api.alice)["id"],
        "public": active(api.admin, visibility="public")["id"],
        "community": active(api.bob, visibility="community")["id"],
    }


def test_readers_read_metadata_but_do_not_download(api: Callers) -> None:
    """Glance 33's download_image default (base.ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE) needs the
    member role; get_image (base.ADMIN_OR_PROJECT_READER_GET_IMAGE) is fine with reader."""
    for image_id in _images(api).values():
        assert api.rita.get(f"/v2/images/{image_id}").status_code == 200
        refused = api.rita.get(f"/v2/images/{image_id}/file")
        assert refused.status_code == 403
        assert message(refused) == "You are not authorized to complete download_image action."
        assert api.alice.get(f"/v2/images/{image_id}/file").status_code == 200


@pytest.mark.parametrize("policy_text", [READERS_DOWNLOAD])
def test_a_policy_file_lets_readers_download(api: Callers, world: World) -> None:
    images = _images(api)
    for image_id in images.values():
        assert api.rita.get(f"/v2/images/{image_id}/file").content == b"image-bytes"
    # The visibility rule still comes first: another project's private image stays 404.
    private = active(api.bob)["id"]
    assert api.rita.get(f"/v2/images/{private}/file").status_code == 404


@pytest.mark.parametrize("policy_text", [ONLY_ADMINS_SHARE])
def test_a_policy_file_lets_only_admins_share(api: Callers, world: World) -> None:
    image_id = active(api.alice, visibility="shared")["id"]
    members = f"/v2/images/{image_id}/members"
    refused = api.alice.post(members, json={"member": world.projects["beta"]})
    assert refused.status_code == 403
    assert message(refused) == "You are not authorized to complete add_member action."
    assert api.admin.post(members, json={"member": world.projects["beta"]}).status_code == 200
    patch = [{"op": "replace", "path": "/visibility", "value": "community"}]
    assert api.alice.patch(f"/v2/images/{image_id}", patch).status_code == 403
    assert api.admin.patch(f"/v2/images/{image_id}", patch).status_code == 200
    # Rules the file leaves alone keep their defaults: the owner still renames the image.
    rename = [{"op": "replace", "path": "/name", "value": "renamed"}]
    assert api.alice.patch(f"/v2/images/{image_id}", rename).status_code == 200


@pytest.mark.parametrize("policy_text", ['"get_image": "rule:context_is_admin"\n'])
def test_when_get_image_refuses_other_actions_answer_404(api: Callers) -> None:
    """As Glance (glance/api/v2/policy.py ImageAPIPolicy._enforce): a refusal by any rule is 404
    when the get_image rule refuses the caller too, so a refused caller learns nothing; a rule that
    allows stands on its own (Glance consults get_image only on a refusal)."""
    image_id = active(api.admin, visibility="public")["id"]
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 404
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 404
    assert api.alice.get(f"/v2/images/{image_id}/file").status_code == 200
    assert api.admin.get(f"/v2/images/{image_id}").status_code == 200


def test_create_app_refuses_a_file_that_does_not_parse(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text('"download_image": "role:member or (role:reader"\n')
    with pytest.raises(PolicyFileError, match="rule 'download_image' does not parse"):
        create_app(dataclasses.replace(settings, policy_file=str(path)))


def test_serve_stops_on_a_bad_policy_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text('"add_member": "rule:admins_only"\n')
    monkeypatch.setenv("SPYGLASS_POLICY_FILE", str(path))
    assert cli.main(["--data-dir", str(tmp_path / "data"), "serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "rule:admins_only, which is not defined" in err
    # Nothing was set up before the refusal.
    assert not (tmp_path / "data" / "spyglass.db").exists()
