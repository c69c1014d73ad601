"""Reference-counted blobs (spyglass.images.blob_refs) below the API: drift, recovery, lost bytes."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import delete, insert, select, update

from spyglass.blobs import FilesystemStore, MemoryStore
from spyglass.data.recovery import recover
from spyglass.db.engine import Database
from spyglass.db.tables import blobs, images
from spyglass.images import blob_refs
from spyglass.settings import Settings
from spyglass.timeutil import utcnow

HASH = "ab" * 64


def _image(db: Database, key: str | None, size: int = 4, owner: str = "alpha") -> str:
    image_id = str(uuid.uuid4())
    now = utcnow()
    with db.write() as conn:
        conn.execute(
            insert(images).values(
                id=image_id,
                owner=owner,
                status="active",
                visibility="private",
                blob_key=key,
                size=size,
                checksum="c" * 32,
                os_hash_algo="sha512",
                os_hash_value=HASH,
                created_at=now,
                updated_at=now,
                min_disk=0,
                min_ram=0,
                protected=False,
                os_hidden=False,
            )
        )
    return image_id


def _counts(db: Database) -> dict[str, int]:
    with db.read() as conn:
        return {r.blob_key: r.refcount for r in conn.execute(select(blobs))}


def _drop_image(db: Database, image_id: str, key: str) -> str | None:
    with db.write() as conn:
        conn.execute(delete(images).where(images.c.id == image_id))
        return blob_refs.release(conn, key)


def _put(store: MemoryStore, key: str, data: bytes = b"data") -> None:
    writer = store.writer(key)
    writer.write(data)
    writer.commit()


def test_adopt_tracks_a_new_blob_then_shares_an_identical_one(db: Database) -> None:
    store = MemoryStore()
    for key in ("k1", "k2"):
        _put(store, key)
    first, second = _image(db, "k1"), _image(db, "k2")
    blob_refs.adopt(db, store, first, "k1")
    blob_refs.adopt(db, store, second, "k2")
    assert _counts(db) == {"k1": 2}
    assert list(store.blobs) == ["k1"]
    with db.read() as conn:
        assert conn.execute(select(images.c.blob_key).where(images.c.id == second)).scalar() == "k1"


def test_an_identical_blob_of_another_project_is_not_shared(db: Database) -> None:
    store = MemoryStore()
    for key in ("k1", "k2", "k3"):
        _put(store, key)
    theirs, mine, again = _image(db, "k1"), _image(db, "k2", owner="beta"), _image(db, "k3", owner="beta")
    for image_id, key in ((theirs, "k1"), (mine, "k2"), (again, "k3")):
        blob_refs.adopt(db, store, image_id, key)
    assert _counts(db) == {"k1": 1, "k2": 2}
    assert sorted(store.blobs) == ["k1", "k2"]


def test_a_twin_whose_bytes_are_lost_is_not_shared(db: Database) -> None:
    store = MemoryStore()
    _put(store, "k2")
    first, second = _image(db, "k1"), _image(db, "k2")
    blob_refs.adopt(db, MemoryStore(), first, "k1")  # tracked, but this store never had its bytes
    blob_refs.adopt(db, store, second, "k2")
    assert _counts(db) == {"k1": 1, "k2": 1}
    assert list(store.blobs) == ["k2"]


def test_adopt_leaves_an_image_that_changed_meanwhile(db: Database) -> None:
    store = MemoryStore()
    _put(store, "k1")
    image_id = _image(db, "other")
    blob_refs.adopt(db, store, image_id, "k1")
    assert _counts(db) == {} and list(store.blobs) == ["k1"]


def test_release_trusts_the_images_table_over_a_drifted_count(db: Database) -> None:
    first, second = _image(db, "k"), _image(db, "k")
    with db.write() as conn:
        conn.execute(
            insert(blobs).values(blob_key="k", store="memory", refcount=1, size=4, created_at=utcnow())
        )
    assert _drop_image(db, first, "k") is None  # the count said 0, but `second` still refers to it
    assert _counts(db) == {"k": 1}
    assert _drop_image(db, second, "k") == "k"
    assert _counts(db) == {}


def test_release_of_an_untracked_key_counts_the_images(db: Database) -> None:
    first, second = _image(db, "u"), _image(db, "u")
    assert _drop_image(db, first, "u") is None
    assert _drop_image(db, second, "u") == "u"
    assert _counts(db) == {}


def test_recovery_keeps_shared_blobs_removes_orphans_and_fixes_counts(
    db: Database, settings: Settings
) -> None:
    store = FilesystemStore(settings.blob_dir)
    for key in ("shared", "orphan"):
        (settings.blob_dir / key).write_bytes(b"data")
    _image(db, "shared")
    _image(db, "shared")
    with db.write() as conn:
        for key, count in (("shared", 7), ("orphan", 1)):
            conn.execute(
                insert(blobs).values(blob_key=key, store="fs", refcount=count, size=4, created_at=utcnow())
            )
    result = recover(db, store)
    assert result.orphans_removed == 1
    assert sorted(store.iter_keys()) == ["shared"]
    assert _counts(db) == {"shared": 2}


def test_reconcile_forgets_blobs_nobody_refers_to(db: Database) -> None:
    image_id = _image(db, "k")
    with db.write() as conn:
        conn.execute(insert(blobs).values(blob_key="k", store="fs", refcount=3, size=4, created_at=utcnow()))
        conn.execute(update(images).where(images.c.id == image_id).values(blob_key=None))
        blob_refs.reconcile(conn)
    assert _counts(db) == {}


def test_identical_uploads_adopted_at_once_keep_one_blob(db: Database) -> None:
    # On PostgreSQL each adopt runs in its own transaction; without serializing on the content, each
    # would find no twin (the others not committed yet) and every copy would be kept.
    store = MemoryStore()
    keys = [f"same{i}" for i in range(8)]
    for key in keys:
        _put(store, key)
    image_ids = [_image(db, key) for key in keys]
    start = threading.Barrier(len(keys))

    def adopt(image_id: str, key: str) -> None:
        start.wait()
        blob_refs.adopt(db, store, image_id, key)

    with ThreadPoolExecutor(len(keys)) as pool:
        for job in [pool.submit(adopt, i, k) for i, k in zip(image_ids, keys, strict=True)]:
            job.result()
    assert len(store.blobs) == 1
    (kept,) = store.blobs
    assert _counts(db) == {kept: len(keys)}
    with db.read() as conn:
        assert set(conn.execute(select(images.c.blob_key).where(images.c.id.in_(image_ids))).scalars()) == {
            kept
        }
