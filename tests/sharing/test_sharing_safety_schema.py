"""Migration 0002: the models match the migrated schema, and existing blobs become reference-counted."""

from __future__ import annotations

from sqlalchemy import insert, select

from spyglass.db.engine import Database
from spyglass.db.migrate import schema_differences, upgrade
from spyglass.db.tables import blobs, images
from spyglass.timeutil import utcnow


def test_the_migrated_schema_matches_the_models(db: Database) -> None:
    assert schema_differences(db) == []


def test_upgrading_from_0001_counts_the_references_of_existing_blobs(tmp_path: object) -> None:
    db = Database(f"sqlite:///{tmp_path}/old.db")
    try:
        upgrade(db, "0001")
        now = utcnow()
        base = {"status": "active", "visibility": "private", "created_at": now, "updated_at": now}
        rows = [
            {**base, "id": "00000000-0000-4000-8000-00000000000" + str(n), "blob_key": key, "size": 4}
            for n, key in enumerate(("k1", "k1", "k2", None))
        ]
        with db.write() as conn:
            for row in rows:
                conn.execute(
                    insert(images).values(min_disk=0, min_ram=0, protected=False, os_hidden=False, **row)
                )
        upgrade(db)
        with db.read() as conn:
            found = {r.blob_key: (r.refcount, r.size, r.store) for r in conn.execute(select(blobs))}
        assert found == {"k1": (2, 4, ""), "k2": (1, 4, "")}
        assert schema_differences(db) == []
    finally:
        db.dispose()
