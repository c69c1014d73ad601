"""sharing safety: audit trail, usage, recycle bin, reference-counted blobs, webhooks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:00:00.000000

Existing blobs are recorded in `blobs` with the number of images that refer to them, and an empty
store name: they are reference-counted from now on, but never matched for deduplication (the
migration cannot know which store holds them).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _cascade_to_images(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["image_id"], ["images.id"], name=op.f(f"fk_{table}_image_id_images"), ondelete="CASCADE"
    )


def _create_events() -> None:
    op.create_table(
        "image_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=True),
        sa.Column("actor_user_id", sa.String(length=64), nullable=True),
        sa.Column("actor_project_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_events")),
    )
    op.create_index(op.f("ix_image_events_image_id_id"), "image_events", ["image_id", "id"])
    op.create_index(op.f("ix_image_events_member_id_image_id"), "image_events", ["member_id", "image_id"])


def _create_usage_and_bin() -> None:
    op.create_table(
        "image_usage",
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("downloads", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("first_download_at", sa.DateTime(), nullable=False),
        sa.Column("last_download_at", sa.DateTime(), nullable=False),
        _cascade_to_images("image_usage"),
        sa.PrimaryKeyConstraint("image_id", "project_id", name=op.f("pk_image_usage")),
    )
    op.create_table(
        "recycle_bin",
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("previous_status", sa.String(length=30), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
        sa.Column("purge_after", sa.DateTime(), nullable=False),
        sa.Column("deleted_by_user", sa.String(length=64), nullable=True),
        sa.Column("deleted_by_project", sa.String(length=64), nullable=True),
        _cascade_to_images("recycle_bin"),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_recycle_bin")),
    )
    op.create_index(op.f("ix_recycle_bin_purge_after"), "recycle_bin", ["purge_after"])


def _create_blobs() -> None:
    op.create_index(op.f("ix_images_blob_key"), "images", ["blob_key"])
    op.create_table(
        "blobs",
        sa.Column("blob_key", sa.String(length=255), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("refcount", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=32), nullable=True),
        sa.Column("os_hash_algo", sa.String(length=64), nullable=True),
        sa.Column("os_hash_value", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("blob_key", name=op.f("pk_blobs")),
    )
    op.create_index(op.f("ix_blobs_store_os_hash_value"), "blobs", ["store", "os_hash_value"])
    op.execute(
        "INSERT INTO blobs (blob_key, store, refcount, size, checksum, os_hash_algo, os_hash_value, "
        "created_at) SELECT blob_key, '', count(*), coalesce(max(size), 0), max(checksum), "
        "max(os_hash_algo), max(os_hash_value), min(created_at) FROM images "
        "WHERE blob_key IS NOT NULL GROUP BY blob_key"
    )


def _create_webhooks() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index(op.f("ix_webhooks_project_id"), "webhooks", ["project_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_status_webhook_id_id"),
        "webhook_deliveries",
        ["status", "webhook_id", "id"],
    )


def upgrade() -> None:
    _create_events()
    _create_usage_and_bin()
    _create_blobs()
    _create_webhooks()


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("blobs")
    op.drop_index(op.f("ix_images_blob_key"), table_name="images")
    op.drop_table("recycle_bin")
    op.drop_table("image_usage")
    op.drop_table("image_events")
