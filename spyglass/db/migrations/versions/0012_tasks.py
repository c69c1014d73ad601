"""tasks: Glance's import tasks and the tasks API

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("image_id", sa.String(length=36), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("input", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    op.create_index(op.f("ix_tasks_owner_created_at"), "tasks", ["owner", "created_at"])
    op.create_index(op.f("ix_tasks_image_id"), "tasks", ["image_id"])
    op.create_index(op.f("ix_tasks_expires_at"), "tasks", ["expires_at"])
    op.create_index(op.f("ix_tasks_created_at_id"), "tasks", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tasks_created_at_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_expires_at"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_image_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_owner_created_at"), table_name="tasks")
    op.drop_table("tasks")
