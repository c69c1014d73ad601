from tests.conftest import Callers, World


def test_create_upload_download(api: Callers, world: World) -> None:
    created = api.alice.post(
        "/v2/images", json={"name": "x", "disk_format": "raw", "container_format": "bare"}
    )
    assert created.status_code == 201, created.text
    image = created.json()
    assert image["owner"] == world.projects["alpha"]
    assert image["visibility"] == "shared"
    put = api.alice.put(
        f"/v2/images/{image['id']}/file",
        content=b"abc" * 1000,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 204, put.text
    got = api.alice.get(f"/v2/images/{image['id']}/file")
    assert got.content == b"abc" * 1000
    assert got.headers["content-md5"] == api.alice.get(f"/v2/images/{image['id']}").json()["checksum"]
    assert api.bob.get(f"/v2/images/{image['id']}").status_code == 404
