"""several stores: the store of each image's data, and further locations in other stores

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 09:00:00.000000

Existing images keep a null `store`, which means the default store: until now there was only one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("store", sa.String(length=64), nullable=True))
    op.create_table(
        "image_locations",
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_image_locations_image_id_images"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("image_id", "store", name=op.f("pk_image_locations")),
    )
    op.create_index(op.f("ix_image_locations_blob_key"), "image_locations", ["blob_key"])


def downgrade() -> None:
    op.drop_index(op.f("ix_image_locations_blob_key"), table_name="image_locations")
    op.drop_table("image_locations")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("store")
