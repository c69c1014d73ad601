"""used image ids: an image id is never reused, also after the image was deleted or purged

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 02:20:00.000000

Reserves, lowercased, every id the database knows was used: current images (also those in the
recycle bin), ids with audit events (deleted images), and the sources named by copies' provenance.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Where an id that was once used can still be found; only UUID-long strings are ids.
KNOWN_IDS = (
    "SELECT lower(id) FROM images",
    "SELECT lower(image_id) FROM image_events",
    "SELECT lower(value) FROM image_properties "
    "WHERE name = 'spyglass_copied_from_image' AND length(value) = 36",
)


def upgrade() -> None:
    op.create_table(
        "used_image_ids",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_used_image_ids")),
    )
    op.execute(f"INSERT INTO used_image_ids (id) {' UNION '.join(KNOWN_IDS)}")


def downgrade() -> None:
    op.drop_table("used_image_ids")
