"""Who may use each sharing-safety endpoint: owner (member role), a reader of the owner project, an
accepted member, a stranger, an admin, and no token. Written from the README's rules, not the code:

- reading events and usage: the owner project (any role), admins, and members (their own part);
  strangers get 404 as for a missing image;
- copying: any project that sees the image, with the member role (a reader makes no image);
- restoring: the owner with the member role, or an admin; a member is refused (403, it sees the
  image), a stranger gets 404; an image not in the bin is 409;
- the inbox, the recycle bin list and the webhook list: anyone authenticated (each sees its own);
  registering a webhook needs the member role.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.safety import callers_with, share
from tests.conftest import Caller, Callers, World

CALLERS = ("alice", "rita", "bob", "carol", "admin", "anonymous")

# operation -> expected status per caller, in the order of CALLERS.
ON_A_SHARED_IMAGE = {
    ("GET", "events"): (200, 200, 200, 404, 200, 401),
    ("GET", "usage"): (200, 200, 200, 404, 200, 401),
    ("POST", "actions/copy"): (201, 403, 201, 404, 201, 401),
    ("POST", "actions/restore"): (409, 403, 403, 404, 409, 401),
}
UNTARGETED = {
    ("GET", "/v2/shared-images/invitations"): (200, 200, 200, 200, 200, 401),
    ("GET", "/v2/recycle-bin"): (200, 200, 200, 200, 200, 401),
    ("GET", "/v2/webhooks"): (200, 200, 200, 200, 200, 401),
}


def _caller(api: Callers, name: str) -> Caller:
    return getattr(api, name)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("operation", "expected"), list(ON_A_SHARED_IMAGE.items()), ids=str)
def test_image_operations(
    api: Callers, world: World, operation: tuple[str, str], expected: tuple[int, ...]
) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    method, path = operation
    got = tuple(
        _caller(api, name).request(method, f"/v2/images/{image_id}/{path}").status_code for name in CALLERS
    )
    assert got == expected


@pytest.mark.parametrize(("operation", "expected"), list(UNTARGETED.items()), ids=str)
def test_untargeted_operations(api: Callers, operation: tuple[str, str], expected: tuple[int, ...]) -> None:
    method, path = operation
    assert tuple(_caller(api, name).request(method, path).status_code for name in CALLERS) == expected


def test_registering_a_webhook(api: Callers) -> None:
    body = {"url": "http://hooks.example/x"}
    got = tuple(_caller(api, name).post("/v2/webhooks", json=body).status_code for name in CALLERS)
    assert got == (201, 403, 201, 201, 201, 401)


@pytest.fixture
def binned(settings: Settings, db: Database, world: World) -> Iterator[Callers]:
    with callers_with(settings, db, world, recycle_retention_days=1, webhook_poll_seconds=0) as api:
        yield api


@pytest.mark.parametrize(
    ("name", "show", "restore"),
    [
        ("alice", 200, 200),
        ("rita", 200, 403),
        ("bob", 404, 404),
        ("carol", 404, 404),
        ("admin", 200, 200),
        ("anonymous", 401, 401),
    ],
)
def test_an_image_in_the_bin(binned: Callers, world: World, name: str, show: int, restore: int) -> None:
    image_id = share(binned.alice, world.projects["beta"], binned.bob)
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    caller = _caller(binned, name)
    assert caller.get(f"/v2/images/{image_id}").status_code == show
    assert caller.post(f"/v2/images/{image_id}/actions/restore").status_code == restore
