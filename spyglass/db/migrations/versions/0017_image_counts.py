"""image_counts: each project's count of images, kept by triggers for the image_count_total quota

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 11:10:00.000000

The count a quota check reads is what `SELECT count(*) FROM images WHERE owner = ? AND status NOT
IN ('killed', 'deleted')` answers, kept in one row per project by triggers on `images`, so that it
is right whatever path writes an image (the service, a migration, an operator's SQL). A write that
changes the count holds the project's row to its commit, which is the lock that makes a create's
check exact on PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_UNCOUNTED = "('killed', 'deleted')"

# An UPSERT, not INSERT OR IGNORE: the conflict clause of the statement that fires a trigger (an
# operator's INSERT OR REPLACE INTO images) would replace that of an INSERT OR IGNORE in it. The row
# such a REPLACE removes fires the delete trigger only with `PRAGMA recursive_triggers` on, as
# Spyglass's connections have it (spyglass.db.engine).
_JOIN = (
    "INSERT INTO project_image_counts (project_id, images) VALUES (NEW.owner, 1)"
    " ON CONFLICT (project_id) DO UPDATE SET images = images + 1;"
)
_LEAVE = "UPDATE project_image_counts SET images = images - 1 WHERE project_id = OLD.owner;"

_SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER image_counts_insert AFTER INSERT ON images
    WHEN NEW.owner IS NOT NULL AND NEW.status NOT IN {_UNCOUNTED}
    BEGIN
        {_JOIN}
    END
    """,
    f"""
    CREATE TRIGGER image_counts_delete AFTER DELETE ON images
    WHEN OLD.owner IS NOT NULL AND OLD.status NOT IN {_UNCOUNTED}
    BEGIN
        {_LEAVE}
    END
    """,
    # An update leaves the count of its old owner when it was counted there and now is not (an
    # owner change, or a status that does not count), and joins its new owner's in the mirror case.
    f"""
    CREATE TRIGGER image_counts_leave AFTER UPDATE OF owner, status ON images
    WHEN OLD.owner IS NOT NULL AND OLD.status NOT IN {_UNCOUNTED}
        AND (NEW.owner IS NOT OLD.owner OR NEW.status IN {_UNCOUNTED})
    BEGIN
        {_LEAVE}
    END
    """,
    f"""
    CREATE TRIGGER image_counts_join AFTER UPDATE OF owner, status ON images
    WHEN NEW.owner IS NOT NULL AND NEW.status NOT IN {_UNCOUNTED}
        AND (NEW.owner IS NOT OLD.owner OR OLD.status IN {_UNCOUNTED})
    BEGIN
        {_JOIN}
    END
    """,
]

# One function for every change; an update calls it only when the owner or whether the status
# counts changed (most status changes do not). Rows of two projects are taken in id order, so that
# two owner changes in opposite directions cannot deadlock.
_POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION spyglass_count_images() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    leaving text := NULL;
    joining text := NULL;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.owner IS NOT NULL AND OLD.status NOT IN {_UNCOUNTED} THEN
            leaving := OLD.owner;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.owner IS NOT NULL AND NEW.status NOT IN {_UNCOUNTED} THEN
            joining := NEW.owner;
        END IF;
    END IF;
    IF leaving IS NOT DISTINCT FROM joining THEN
        RETURN NULL;
    END IF;
    IF joining IS NOT NULL AND (leaving IS NULL OR joining < leaving) THEN
        INSERT INTO project_image_counts AS c (project_id, images) VALUES (joining, 1)
            ON CONFLICT (project_id) DO UPDATE SET images = c.images + 1;
        joining := NULL;
    END IF;
    IF leaving IS NOT NULL THEN
        UPDATE project_image_counts SET images = images - 1 WHERE project_id = leaving;
    END IF;
    IF joining IS NOT NULL THEN
        INSERT INTO project_image_counts AS c (project_id, images) VALUES (joining, 1)
            ON CONFLICT (project_id) DO UPDATE SET images = c.images + 1;
    END IF;
    RETURN NULL;
END
$$
"""

_POSTGRESQL_TRIGGERS = [
    """
    CREATE TRIGGER image_counts_insert_delete AFTER INSERT OR DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION spyglass_count_images()
    """,
    f"""
    CREATE TRIGGER image_counts_update AFTER UPDATE OF owner, status ON images
    FOR EACH ROW WHEN (
        OLD.owner IS DISTINCT FROM NEW.owner
        OR (OLD.status IN {_UNCOUNTED}) <> (NEW.status IN {_UNCOUNTED})
    )
    EXECUTE FUNCTION spyglass_count_images()
    """,
]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # No image written between the count below and the triggers (a node of the old version
        # still serving meanwhile): its change would be missing from the count for good.
        op.execute("LOCK TABLE images IN SHARE ROW EXCLUSIVE MODE")
    else:
        # Spyglass's SQLite connections commit each statement unless told otherwise: the count and
        # the triggers are one transaction, which holds off every other writer.
        op.execute("BEGIN IMMEDIATE")
    op.create_table(
        "project_image_counts",
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("images", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_image_counts")),
    )
    op.execute(
        "INSERT INTO project_image_counts (project_id, images) "
        f"SELECT owner, count(*) FROM images WHERE owner IS NOT NULL AND status NOT IN {_UNCOUNTED} "
        "GROUP BY owner"
    )
    if postgresql:
        op.execute(_POSTGRESQL_FUNCTION)
        for trigger in _POSTGRESQL_TRIGGERS:
            op.execute(trigger)
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute("COMMIT")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER image_counts_update ON images")
        op.execute("DROP TRIGGER image_counts_insert_delete ON images")
        op.execute("DROP FUNCTION spyglass_count_images()")
    else:
        for name in ("insert", "delete", "leave", "join"):
            op.execute(f"DROP TRIGGER image_counts_{name}")
    op.drop_table("project_image_counts")
