"""What Spyglass writes on disk is its owner's alone (0700 directories, 0600 files), whatever the umask."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from spyglass.blobs import FilesystemStore
from spyglass.cli import prepare
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import OCTET, create, upload
from tests.conftest import POSTGRES, Callers, World


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o000)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_a_new_data_dir_and_everything_in_it_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    settings = Settings(data_dir=data_dir, admin_password="an-admin-password")
    prepare(settings)
    assert {mode(p) for p in (tmp_path / "new", data_dir, settings.blob_dir, settings.staging_dir)} == {0o700}
    database = Database(settings.database)
    try:
        with database.write() as conn:
            conn.execute(text("UPDATE projects SET description = 'x'"))
            assert {mode(data_dir / f"spyglass.db{suffix}") for suffix in ("", "-wal", "-shm")} == {0o600}
    finally:
        database.dispose()


@pytest.mark.skipif(bool(POSTGRES), reason="the SQLite database file")
def test_an_existing_data_dir_is_tightened_at_start(tmp_path: Path, template: tuple[str, World]) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    shutil.copy(template[0], data_dir / "spyglass.db")
    (data_dir / "spyglass.db-wal").write_bytes(b"")
    for name in ("spyglass.db", "spyglass.db-wal"):
        os.chmod(data_dir / name, 0o644)
    prepare(Settings(data_dir=data_dir))
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "spyglass.db") == 0o600
    if (data_dir / "spyglass.db-wal").exists():
        assert mode(data_dir / "spyglass.db-wal") == 0o600


@pytest.mark.usefixtures("permissive_umask")
def test_blob_files_and_directories_are_private(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "a" / "images")
    writer = store.writer("key")
    writer.write(b"data")
    writer.commit()
    assert (mode(tmp_path / "a"), mode(store.root), mode(store.root / "key")) == (0o700, 0o700, 0o600)


def test_uploaded_and_staged_data_is_private(
    permissive_umask: None, api: Callers, settings: Settings
) -> None:
    uploaded = create(api.alice)
    upload(api.alice, uploaded["id"], b"uploaded bytes")
    staged = create(api.alice)
    response = api.alice.put(f"/v2/images/{staged['id']}/stage", content=b"staged bytes", headers=OCTET)
    assert response.status_code == 204, response.text
    assert mode(settings.staging_dir) == 0o700
    files = [*settings.blob_dir.iterdir(), *settings.staging_dir.iterdir()]
    assert len(files) == 2 and {mode(p) for p in files} == {0o600}
