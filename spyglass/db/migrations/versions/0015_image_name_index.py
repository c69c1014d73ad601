"""an index on image names: the `name` filter (a search by name, a lookup by name) without a scan

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 06:40:00.000000
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_images_name"), "images", ["name"])


def downgrade() -> None:
    op.drop_index(op.f("ix_images_name"), table_name="images")
