from sqlalchemy import insert, select

from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.db.tables import images
from spyglass.maintenance import recover
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
