"""domain shares: the mark of member rows made by sharing an image with a whole domain

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_member_origins",
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=255), nullable=False),
        sa.Column("via_domain", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id", "member_id"],
            ["image_members.image_id", "image_members.member_id"],
            name=op.f("fk_image_member_origins_image_id_image_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "member_id", name=op.f("pk_image_member_origins")),
    )
    op.create_index(
        op.f("ix_image_member_origins_image_id_via_domain"),
        "image_member_origins",
        ["image_id", "via_domain"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_image_member_origins_image_id_via_domain"), table_name="image_member_origins")
    op.drop_table("image_member_origins")
