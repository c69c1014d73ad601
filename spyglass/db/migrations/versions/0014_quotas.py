"""quotas: Keystone's unified limits, reservations of data in flight, per-project request counts, and
an index to count a project's images by status

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 05:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_images_owner_status"), "images", ["owner", "status"])
    op.create_table(
        "registered_limits",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=True),
        sa.Column("resource_name", sa.String(length=255), nullable=False),
        sa.Column("default_limit", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registered_limits")),
    )
    op.create_index(
        op.f("ix_registered_limits_service_id_resource_name"),
        "registered_limits",
        ["service_id", "resource_name"],
    )
    op.create_table(
        "project_limits",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("registered_limit_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("domain_id", sa.String(length=64), nullable=True),
        sa.Column("resource_limit", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["registered_limit_id"],
            ["registered_limits.id"],
            name=op.f("fk_project_limits_registered_limit_id_registered_limits"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_limits")),
    )
    op.create_index(op.f("ix_project_limits_project_id"), "project_limits", ["project_id"])
    op.create_index(op.f("ix_project_limits_registered_limit_id"), "project_limits", ["registered_limit_id"])
    op.create_table(
        "quota_reservations",
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("resource_name", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_quota_reservations_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "resource_name", name=op.f("pk_quota_reservations")),
    )
    op.create_index(
        op.f("ix_quota_reservations_project_id_resource_name"),
        "quota_reservations",
        ["project_id", "resource_name"],
    )
    op.create_table(
        "request_counts",
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "action", "window_start", name=op.f("pk_request_counts")),
    )
    op.create_index(op.f("ix_request_counts_window_start"), "request_counts", ["window_start"])


def downgrade() -> None:
    op.drop_index(op.f("ix_request_counts_window_start"), table_name="request_counts")
    op.drop_table("request_counts")
    op.drop_index(op.f("ix_quota_reservations_project_id_resource_name"), table_name="quota_reservations")
    op.drop_table("quota_reservations")
    op.drop_index(op.f("ix_project_limits_registered_limit_id"), table_name="project_limits")
    op.drop_index(op.f("ix_project_limits_project_id"), table_name="project_limits")
    op.drop_table("project_limits")
    op.drop_index(op.f("ix_registered_limits_service_id_resource_name"), table_name="registered_limits")
    op.drop_table("registered_limits")
    op.drop_index(op.f("ix_images_owner_status"), table_name="images")
