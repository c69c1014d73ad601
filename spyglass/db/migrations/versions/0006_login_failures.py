"""failed password logins, for throttling them per user and address and per address

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 02:25:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_address_failed_at"), "login_failures", ["address", "failed_at"])
    op.create_index(
        op.f("ix_login_failures_subject_address_failed_at"),
        "login_failures",
        ["subject", "address", "failed_at"],
    )
    op.create_index(op.f("ix_login_failures_failed_at"), "login_failures", ["failed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_failed_at"), table_name="login_failures")
    op.drop_index(op.f("ix_login_failures_subject_address_failed_at"), table_name="login_failures")
    op.drop_index(op.f("ix_login_failures_address_failed_at"), table_name="login_failures")
    op.drop_table("login_failures")
