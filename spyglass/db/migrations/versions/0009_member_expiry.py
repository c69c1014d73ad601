"""shares that end on a date: member expiries

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_member_expiries",
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("warned_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id", "member_id"],
            ["image_members.image_id", "image_members.member_id"],
            name=op.f("fk_image_member_expiries_image_id_image_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "member_id", name=op.f("pk_image_member_expiries")),
    )
    op.create_index(op.f("ix_image_member_expiries_expires_at"), "image_member_expiries", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_image_member_expiries_expires_at"), table_name="image_member_expiries")
    op.drop_table("image_member_expiries")
