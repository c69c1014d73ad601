"""clouds.yaml holds passwords: it is readable by its owner only, also when it already existed."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from spyglass.cli import write_clouds_yaml
from spyglass.identity.bootstrap import Credentials
from spyglass.settings import Settings


def test_clouds_yaml_is_private_even_when_it_existed(tmp_path: Path) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text("clouds: {}\n")
    path.chmod(0o644)
    creds = Credentials({"spyglass-a": ("alice", "pw", "demo-a", "Default")})
    assert write_clouds_yaml(Settings(data_dir=tmp_path), creds) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "pw" in path.read_text()


def test_a_later_start_on_another_port_moves_the_clouds_and_keeps_their_passwords(tmp_path: Path) -> None:
    creds = Credentials({"spyglass-a": ("alice", "pw", "demo-a", "Default")})
    write_clouds_yaml(Settings(data_dir=tmp_path, port=9292), creds)
    path = write_clouds_yaml(Settings(data_dir=tmp_path, port=9393), Credentials({}))
    assert path is not None
    cloud = yaml.safe_load(path.read_text())["clouds"]["spyglass-a"]
    assert cloud["auth"]["auth_url"] == "http://127.0.0.1:9393/identity"
    assert cloud["auth"]["password"] == "pw"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_public_url_and_region_change_reach_the_clouds_but_not_a_cloud_of_the_users(tmp_path: Path) -> None:
    creds = Credentials({"spyglass-a": ("alice", "pw", "demo-a", "Default")})
    write_clouds_yaml(Settings(data_dir=tmp_path), creds)
    path = tmp_path / "clouds.yaml"
    data = yaml.safe_load(path.read_text())
    data["clouds"]["mine"] = {"auth": {"auth_url": "https://elsewhere/v3"}}
    path.write_text(yaml.safe_dump(data))
    write_clouds_yaml(
        Settings(data_dir=tmp_path, public_url="https://images.example", region="R2"), Credentials({})
    )
    clouds = yaml.safe_load(path.read_text())["clouds"]
    assert clouds["spyglass-a"]["auth"]["auth_url"] == "https://images.example/identity"
    assert clouds["spyglass-a"]["region_name"] == "R2"
    assert clouds["mine"]["auth"]["auth_url"] == "https://elsewhere/v3"


def test_an_unchanged_start_leaves_the_file_alone(tmp_path: Path) -> None:
    creds = Credentials({"spyglass-a": ("alice", "pw", "demo-a", "Default")})
    write_clouds_yaml(Settings(data_dir=tmp_path), creds)
    assert write_clouds_yaml(Settings(data_dir=tmp_path), Credentials({})) is None
    assert write_clouds_yaml(Settings(data_dir=tmp_path / "new"), Credentials({})) is None
