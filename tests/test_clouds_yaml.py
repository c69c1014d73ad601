"""clouds.yaml holds passwords: it is readable by its owner only, also when it already existed."""

from __future__ import annotations

import stat
from pathlib import Path

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
