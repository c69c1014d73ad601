from tests.e2e.conftest import Server


def test_demo_clouds_work_with_the_openstack_cli(server: Server) -> None:
    for cloud in ("spyglass-admin", "spyglass-a", "spyglass-b"):
        token = server.openstack_json(cloud, "token", "issue")
        assert token["project_id"]
    assert server.openstack_json("spyglass-a", "image", "list") == []
