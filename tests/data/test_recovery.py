from sqlalchemy import insert, select, update

from spyglass.blobs import FilesystemStore
from spyglass.data.recovery import recover
from spyglass.db.engine import Database
from spyglass.db.tables import images
from spyglass.images import queries as q
from spyglass.settings import Settings
from spyglass.timeutil import utcnow


def _image(db: Database, image_id: str, status: str, blob_key: str | None) -> None:
    now = utcnow()
    with db.write() as conn:
        conn.execute(
            insert(images).values(
                id=image_id,
                status=status,
                visibility="private",
                blob_key=blob_key,
                created_at=now,
                updated_at=now,
                min_disk=0,
                min_ram=0,
                protected=False,
                os_hidden=False,
            )
        )


def test_recover_requeues_interrupted_uploads_and_removes_orphans(db: Database, settings: Settings) -> None:
    store = FilesystemStore(settings.blob_dir)
    saving, active = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
    _image(db, saving, "saving", None)
    _image(db, active, "active", active)
    for key in (active, f"{saving}.partial", "leftover"):
        (settings.blob_dir / key).write_bytes(b"data")

    result = recover(db, store)

    assert (result.requeued, result.orphans_removed) == (1, 2)
    assert sorted(store.iter_keys()) == [active]
    with db.read() as conn:
        statuses = dict(conn.execute(select(images.c.id, images.c.status)).all())
    assert statuses == {saving: "queued", active: "active"}
    assert recover(db, store).requeued == 0


def test_recover_requeues_interrupted_stages_and_imports(db: Database, settings: Settings) -> None:
    store = FilesystemStore(settings.blob_dir)
    staging = FilesystemStore(settings.staging_dir)
    staged, importing = "00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004"
    _image(db, staged, "uploading", None)
    _image(db, importing, "importing", None)
    with db.write() as conn:
        conn.execute(update(images).values(size=4, checksum="c" * 32, os_hash_algo="sha512", virtual_size=4))
        lock = {
            "os_glance_import_task": "task",
            "os_glance_importing_to_stores": "fs",
            "os_glance_failed_import": "",
        }
        q.replace_properties(conn, importing, {}, {**lock, "os_distro": "debian"})
    for key in (staged, f"{importing}.partial"):
        (settings.staging_dir / key).write_bytes(b"data")
    (settings.blob_dir / f"{importing}-0123.partial").write_bytes(b"da")

    result = recover(db, store, staging)

    assert (result.requeued, result.orphans_removed, result.staged_removed) == (2, 1, 2)
    assert list(staging.iter_keys()) == list(store.iter_keys()) == []
    with db.read() as conn:
        rows = {r.id: r for r in conn.execute(select(images)).all()}
        props, _ = q.load_extras(conn, [staged, importing])
    for image_id in (staged, importing):
        row = rows[image_id]
        assert (row.status, row.size, row.checksum, row.os_hash_algo, row.virtual_size) == ("queued",) + (
            None,
        ) * 4
    assert props[importing] == {
        "os_distro": "debian",
        "os_glance_importing_to_stores": "",
        "os_glance_failed_import": "fs",
    }
    assert staged not in props
