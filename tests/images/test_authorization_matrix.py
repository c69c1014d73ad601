"""The authorization matrix: role x relation to the image x visibility x operation.

Expected outcomes are written from the rules as users read them (the README's sharing section),
not by calling the policy code, so the test checks the implementation against the spec:

- A caller sees an image if it is admin, owns it, the image is public or community, or the image
  is shared and the caller's project is a member in any status. Otherwise every operation is 404.
- Downloading needs the member role (or admin): a reader sees the image but gets 403 on its data.
- Writes on the image (patch, tag, deactivate, reactivate, delete, add member) need the owner's
  project with the member role, or admin; otherwise 403. Members are only added to shared images.
- An image that is not shared has no members: every member call is 403 ("Only shared images have
  members."), as Glance answers, for whoever can see the image.
- The member list: owner and admin see all rows, a member its own row, others 404. A member's
  status is changed only by that member (member role) or admin. A member never deletes its own row
  (403).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import insert

from spyglass.db.engine import Database
from spyglass.db.tables import image_members
from tests.conftest import Callers, World

VISIBILITIES = ("private", "shared", "community", "public")
# relation -> (owner project, caller's member status or None)
RELATIONS = {
    "owner": ("CALLER", None),
    "pending": ("beta", "pending"),
    "accepted": ("beta", "accepted"),
    "rejected": ("beta", "rejected"),
    "stranger": ("beta", None),
    "other-domain-member": ("gamma", "accepted"),
    "other-domain-stranger": ("gamma", None),
}
CALLERS = {"member": ("alice", "alpha"), "reader": ("rita", "alpha"), "admin": ("admin", "admin")}
OPERATIONS = (
    "show",
    "listed",
    "download",
    "members",
    "own_member",
    "accept",
    "tag",
    "patch",
    "add_member",
    "deactivate",
    "reactivate",
    "delete_own_member",
    "delete",
)


@dataclass(frozen=True)
class Cell:
    role: str
    relation: str
    visibility: str

    def expected(self, op: str) -> int | bool:
        admin = self.role == "admin"
        owner = self.relation == "owner"
        status = RELATIONS[self.relation][1]
        shared = self.visibility == "shared"
        member = shared and status is not None
        visible = admin or owner or self.visibility in ("public", "community") or member
        if op == "listed":
            # Default list: public, own, accepted shares (admins: everything but other projects'
            # community images, which Glance lists only with visibility=community or all).
            if admin:
                return owner or self.visibility != "community"
            return owner or self.visibility == "public" or (member and status == "accepted")
        if not visible:
            return 404
        writer = self.role in ("member", "admin")
        may_write = admin or (owner and writer)
        if op == "show":
            return 200
        if op == "download":
            # Glance 33's download_image default (glance/policies/base.py,
            # ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE) needs the member role: readers get 403.
            return 200 if self.role in ("member", "admin") else 403
        if op in ("tag", "deactivate", "reactivate", "delete"):
            return 204 if may_write else 403
        if op == "patch":
            return 200 if may_write else 403
        if op == "add_member":
            return (200 if shared else 403) if may_write else 403
        if op in ("members", "own_member", "accept", "delete_own_member") and not shared:
            # Glance checks the visibility before it looks for a member: whoever sees the image.
            return 403
        if op == "members":
            return 200 if admin or owner or member else 404
        if op in ("own_member", "accept", "delete_own_member"):
            if not member:
                # No row of the caller's: admins see every image but this row does not exist.
                return 404
            if op == "own_member":
                return 200
            if op == "accept":
                return 200 if writer else 403
            return 403
        raise AssertionError(op)


CELLS = [
    Cell(role, relation, visibility)
    for role, relation, visibility in itertools.product(CALLERS, RELATIONS, VISIBILITIES)
    if role != "admin" or relation in ("owner", "stranger")
]


def _make_image(api: Callers, world: World, db: Database, cell: Cell) -> str:
    caller_project = world.projects[CALLERS[cell.role][1]]
    owner_name, status = RELATIONS[cell.relation]
    owner = caller_project if owner_name == "CALLER" else world.projects[owner_name]
    body = {
        "name": "m",
        "disk_format": "raw",
        "container_format": "bare",
        "owner": owner,
        "visibility": cell.visibility,
    }
    created = api.admin.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    assert api.admin.put(f"/v2/images/{image_id}/file", content=b"matrix").status_code == 204
    if status is not None:
        # Rows are written directly so that they also exist on non-shared images (kept when an
        # image stops being shared), where they must grant nothing.
        now = datetime(2026, 1, 1)
        with db.write() as conn:
            conn.execute(
                insert(image_members).values(
                    image_id=image_id, member_id=caller_project, status=status, created_at=now, updated_at=now
                )
            )
    return image_id


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: f"{c.role}-{c.relation}-{c.visibility}")
def test_matrix_cell(api: Callers, world: World, db: Database, cell: Cell) -> None:
    image_id = _make_image(api, world, db, cell)
    who = getattr(api, CALLERS[cell.role][0])
    own_project = world.projects[CALLERS[cell.role][1]]
    url = f"/v2/images/{image_id}"
    own_row = f"{url}/members/{own_project}"
    # A third project: neither the owner nor the caller.
    add_target = world.projects["beta" if RELATIONS[cell.relation][0] in ("CALLER", "gamma") else "gamma"]
    outcomes: dict[str, int | bool] = {
        "show": who.get(url).status_code,
        "listed": image_id in {i["id"] for i in who.get("/v2/images?limit=1000").json()["images"]},
        "download": who.get(f"{url}/file").status_code,
        "members": who.get(f"{url}/members").status_code,
        "own_member": who.get(own_row).status_code,
        "accept": who.put(own_row, json={"status": "accepted"}).status_code,
        "tag": who.put(f"{url}/tags/t1").status_code,
        "patch": who.patch(url, [{"op": "replace", "path": "/name", "value": "renamed"}]).status_code,
        "add_member": who.post(f"{url}/members", json={"member": add_target}).status_code,
        "deactivate": who.post(f"{url}/actions/deactivate").status_code,
        "reactivate": who.post(f"{url}/actions/reactivate").status_code,
        "delete_own_member": who.delete(own_row).status_code,
        "delete": who.delete(url).status_code,
    }
    expected = {op: cell.expected(op) for op in OPERATIONS}
    assert outcomes == expected
