"""Who may do what with a domain share, for each caller: alice (owner, member role), rita (reader of
the owner project), carol (gamma: a member through the domain `other`), bob (beta: a stranger),
admin, and no token. `delta` is another project of `other`, so another member through the domain.

- adding and removing the domain entry: the owner with the member role, or an admin; a caller who
  cannot see the image gets 404;
- the member list and the entry itself: the owner project and admins see the entry; a member sees
  only its own row, and 404 for the entry or another member's row;
- a project's status: that project (member role) or an admin; no one sets the entry's status.
"""

from __future__ import annotations

import pytest

from tests.api.helpers import create
from tests.conftest import Caller, Callers, World
from tests.sharing.test_domain_shares import domain_id, new_project

CALLERS = ("alice", "rita", "carol", "bob", "admin", "anonymous")

# (method, path under the image, body) -> expected status per caller, in the order of CALLERS.
# {entry}, {gamma} and {delta} are filled in; every caller acts on an image of its own.
ON_A_DOMAIN_SHARE = {
    ("GET", "members", None): (200, 200, 200, 404, 200, 401),
    ("GET", "members/{entry}", None): (200, 200, 404, 404, 200, 401),
    ("GET", "members/{delta}", None): (200, 200, 404, 404, 200, 401),
    ("GET", "members/{gamma}", None): (200, 200, 200, 404, 200, 401),
    ("PUT", "members/{gamma}", "accepted"): (403, 403, 200, 404, 200, 401),
    ("PUT", "members/{delta}", "accepted"): (403, 403, 404, 404, 200, 401),
    ("PUT", "members/{entry}", "accepted"): (403, 403, 404, 404, 400, 401),
    ("DELETE", "members/{entry}", None): (204, 403, 404, 404, 204, 401),
    # A member sees its own row but, as in Glance, does not remove it.
    ("DELETE", "members/{gamma}", None): (204, 403, 403, 404, 204, 401),
}


def _caller(api: Callers, name: str) -> Caller:
    return getattr(api, name)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("operation", "expected"), list(ON_A_DOMAIN_SHARE.items()), ids=str)
def test_operations_on_a_domain_share(
    api: Callers, world: World, operation: tuple[str, str, str | None], expected: tuple[int, ...]
) -> None:
    other = domain_id(api, "other")
    names = {
        "entry": f"domain:{other}",
        "gamma": world.projects["gamma"],
        "delta": new_project(api, "delta", other),
    }
    method, path, status = operation
    got = []
    for name in CALLERS:
        image_id = create(api.alice, name=f"for-{name}")["id"]
        assert (
            api.alice.post(f"/v2/images/{image_id}/members", json={"member": names["entry"]}).status_code
            == 200
        )
        body = {"json": {"status": status}} if status else {}
        url = f"/v2/images/{image_id}/{path.format(**names)}"
        got.append(_caller(api, name).request(method, url, **body).status_code)
    assert tuple(got) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("alice", 200), ("rita", 403), ("carol", 404), ("bob", 404), ("admin", 200), ("anonymous", 401)],
)
def test_adding_a_domain_share(api: Callers, name: str, expected: int) -> None:
    image_id = create(api.alice, name="to-share")["id"]
    added = _caller(api, name).post(
        f"/v2/images/{image_id}/members", json={"member": f"domain:{domain_id(api, 'other')}"}
    )
    assert added.status_code == expected


def test_a_member_through_the_domain_sees_only_its_own_row(api: Callers, world: World) -> None:
    other = domain_id(api, "other")
    delta = new_project(api, "delta", other)
    image_id = create(api.alice, name="rows")["id"]
    api.alice.post(f"/v2/images/{image_id}/members", json={"member": f"domain:{other}"})
    carol_sees = api.carol.get(f"/v2/images/{image_id}/members").json()["members"]
    assert [m["member_id"] for m in carol_sees] == [world.projects["gamma"]]
    owner_sees = api.alice.get(f"/v2/images/{image_id}/members").json()["members"]
    assert {m["member_id"] for m in owner_sees} == {f"domain:{other}", world.projects["gamma"], delta}
