"""identity generation: a counter that every change to what a token stands for moves on

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:00:00.000000

Triggers bump it in the same transaction as the change, whoever writes (the identity API, the
bootstrap, a project deletion's cascade, an operator's SQL): API nodes trust their cached token
validations only while the counter has not moved (spyglass.identity.token_cache).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The changes that can refuse a token or change its caller: what table, on which events.
WATCHED = {
    "tokens": ("UPDATE", "DELETE"),
    "users": ("UPDATE", "DELETE"),
    "projects": ("UPDATE", "DELETE"),
    "domains": ("UPDATE", "DELETE"),
    "roles": ("UPDATE", "DELETE"),
    "role_assignments": ("INSERT", "UPDATE", "DELETE"),
    "role_implications": ("INSERT", "UPDATE", "DELETE"),
}
BUMP = "UPDATE identity_generation SET value = value + 1 WHERE id = 1"
PG_FUNCTION = "spyglass_bump_identity_generation"


def upgrade() -> None:
    op.create_table(
        "identity_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_generation")),
    )
    op.execute("INSERT INTO identity_generation (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for table, events in WATCHED.items():
            # Once per statement: a bulk delete of expired tokens moves the counter once.
            op.execute(
                f"CREATE TRIGGER {table}_identity_generation AFTER {' OR '.join(events)} ON {table}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()"
            )
        return
    for table, events in WATCHED.items():
        for event in events:
            op.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_identity_generation AFTER {event} ON {table}"
                f" BEGIN {BUMP}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER {table}_identity_generation ON {table}")
        op.execute(f"DROP FUNCTION {PG_FUNCTION}()")
    else:
        for table, events in WATCHED.items():
            for event in events:
                op.execute(f"DROP TRIGGER {table}_{event.lower()}_identity_generation")
    op.drop_table("identity_generation")
