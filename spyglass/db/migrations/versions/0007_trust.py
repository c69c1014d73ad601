"""trusted owners: shares from them start accepted

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-20 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_owners",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("owner_domain", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_owners")),
    )
    op.create_index(op.f("ix_trusted_owners_project_id"), "trusted_owners", ["project_id"])
    op.create_index(op.f("ix_trusted_owners_owner"), "trusted_owners", ["owner"])


def downgrade() -> None:
    op.drop_index(op.f("ix_trusted_owners_owner"), table_name="trusted_owners")
    op.drop_index(op.f("ix_trusted_owners_project_id"), table_name="trusted_owners")
    op.drop_table("trusted_owners")
