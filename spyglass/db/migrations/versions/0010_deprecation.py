"""image deprecations: successor, obsolete_at, delete_at, and the once-only schedule claims

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_deprecations",
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("replacement", sa.String(length=36), nullable=True),
        sa.Column("deprecated_at", sa.DateTime(), nullable=False),
        sa.Column("deprecated_by_user", sa.String(length=64), nullable=True),
        sa.Column("deprecated_by_project", sa.String(length=64), nullable=True),
        sa.Column("obsolete_at", sa.DateTime(), nullable=True),
        sa.Column("delete_at", sa.DateTime(), nullable=True),
        sa.Column("warned_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("previous_properties", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_deprecations_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_image_deprecations")),
    )
    op.create_index(op.f("ix_image_deprecations_obsolete_at"), "image_deprecations", ["obsolete_at"])
    op.create_index(op.f("ix_image_deprecations_delete_at"), "image_deprecations", ["delete_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_image_deprecations_delete_at"), table_name="image_deprecations")
    op.drop_index(op.f("ix_image_deprecations_obsolete_at"), table_name="image_deprecations")
    op.drop_table("image_deprecations")
