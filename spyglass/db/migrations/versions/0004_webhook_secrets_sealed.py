"""webhook secrets sealed at rest: room for the sealed form

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 02:30:00.000000

A sealed secret (spyglass.secret_box) is longer than the 255 characters a clear one was given.
The clear secrets are sealed at start-up (spyglass.audit.outbox.seal_clear_secrets), not here: the key
lives outside the database and outside what a migration is told.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(length=255), type_=sa.Text(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column(
            "secret", existing_type=sa.Text(), type_=sa.String(length=255), existing_nullable=False
        )
