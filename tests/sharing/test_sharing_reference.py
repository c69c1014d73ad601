"""Replays the recorded Glance sharing workflow (shared/reference/glance-sharing/SUMMARY.txt) call
for call: owner A (alice, project alpha) and member B (carol, project gamma in another domain)."""

from __future__ import annotations

import hashlib

from tests.conftest import Callers, World

ZERO = "00000000-0000-0000-0000-000000000000"


def test_sharing_workflow_matches_the_recording(api: Callers, world: World) -> None:
    a, b = api.alice, api.carol
    b_id = world.projects["gamma"]
    data = bytes(range(256)) * 4096

    created = a.post("/v2/images", json={"name": "imgR", "disk_format": "raw", "container_format": "bare"})
    assert created.status_code == 201
    image = created.json()
    iid = image["id"]
    url, members = f"/v2/images/{iid}", f"/v2/images/{iid}/members"
    member_url = f"{members}/{b_id}"
    assert image["visibility"] == "shared" and image["status"] == "queued"

    upload = a.put(f"{url}/file", content=data, headers={"Content-Type": "application/octet-stream"})
    assert upload.status_code == 204
    assert a.get(url).status_code == 200
    assert b.get(url).status_code == 404  # 04: not a member yet

    added = a.post(members, json={"member": b_id})  # 05
    assert added.status_code == 200
    assert added.json() == {
        "member_id": b_id,
        "image_id": iid,
        "status": "pending",
        "created_at": added.json()["created_at"],
        "updated_at": added.json()["updated_at"],
        "schema": "/v2/schemas/member",
    }
    duplicate = a.post(members, json={"member": b_id})  # 06/07
    assert duplicate.status_code == 409
    assert duplicate.json()["message"].startswith(f"Member {b_id} is duplicated for image {iid}")
    bad = a.post(members, json={"project": "x"})  # 08
    assert bad.status_code == 400 and "Member to be added not specified" in bad.json()["message"]

    assert [m["member_id"] for m in a.get(members).json()["members"]] == [b_id]  # 09
    assert a.get(member_url).json()["status"] == "pending"  # 10
    assert [m["member_id"] for m in b.get(members).json()["members"]] == [b_id]  # 11

    def listed(caller_query: str) -> list[str]:
        response = b.get(f"/v2/images{caller_query}")
        assert response.status_code == 200
        return [i["id"] for i in response.json()["images"]]

    assert iid not in listed("")  # 12
    assert iid not in listed("?visibility=shared")  # 13
    assert iid in listed("?visibility=shared&member_status=pending")  # 14
    assert iid in listed("?member_status=all")  # 15
    assert b.get(url).status_code == 200  # 16

    by_owner = a.put(member_url, json={"status": "accepted"})  # 17/18
    assert by_owner.status_code == 403
    assert "You are not authorized to complete modify_member action." in by_owner.json()["message"]
    bogus = b.put(member_url, json={"status": "bogus"})  # 19
    assert bogus.status_code == 400
    assert 'Status must be "pending", "accepted" or "rejected"' in bogus.json()["message"]
    accepted = b.put(member_url, json={"status": "accepted"})  # 20
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert iid in listed("?visibility=shared")  # 21
    assert iid in listed("")
    download = b.get(f"{url}/file")  # 22
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-md5"] == hashlib.md5(data).hexdigest()

    assert b.post(members, json={"member": world.projects["beta"]}).status_code == 403  # 23/24
    patched = b.patch(url, [{"op": "replace", "path": "/name", "value": "hacked"}])  # 25
    assert patched.status_code == 403
    assert "modify_image" in patched.json()["message"]
    assert b.delete(url).status_code == 403  # 26

    assert b.put(member_url, json={"status": "rejected"}).status_code == 200  # 27
    assert iid in listed("?visibility=shared&member_status=rejected")  # 28
    assert iid not in listed("")
    assert b.get(url).status_code == 200  # 29
    assert b.put(member_url, json={"status": "pending"}).status_code == 200  # 30
    assert b.delete(member_url).status_code == 403  # 31
    assert a.delete(member_url).status_code == 204  # 32

    gone = b.get(url)  # 33/34
    assert gone.status_code == 404
    assert gone.json()["message"].startswith(f"No image found with ID {iid}")
    assert b.get(members).status_code == 404  # 35
    assert a.get(member_url).status_code == 404  # 36
    assert a.delete(member_url).status_code == 404  # 37
    assert b.get(f"{url}/file").status_code == 404

    made_private = a.patch(url, [{"op": "replace", "path": "/visibility", "value": "private"}])  # 38
    assert made_private.status_code == 200 and made_private.json()["visibility"] == "private"
    private_add = a.post(members, json={"member": b_id})  # 39
    assert private_add.status_code == 403
    assert f"Not allowed to create members for image {iid}." in private_add.json()["message"]
    public = a.patch(url, [{"op": "replace", "path": "/visibility", "value": "public"}])  # 40
    assert public.status_code == 403 and "publicize_image" in public.json()["message"]
    assert a.post(f"/v2/images/{ZERO}/members", json={"member": b_id}).status_code == 404  # 41

    for name in ("member", "members", "image"):  # 42-44
        assert a.get(f"/v2/schemas/{name}").status_code == 200
    assert a.delete(url).status_code == 204  # 45
    assert a.get(url).status_code == 404


def test_errors_are_html_without_json_accept(api: Callers, world: World) -> None:
    image = api.alice.post("/v2/images", json={"name": "x"}).json()
    response = api.alice.client.post(
        f"/v2/images/{image['id']}/members",
        json={"project": "x"},
        headers={"X-Auth-Token": api.alice.token},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>400 Bad Request</h1>" in response.text and "Member to be added not specified" in response.text
