"""Schema migrations with Alembic: upgrade to head, and check that the models match."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from spyglass.db.engine import Database
from spyglass.db.tables import metadata

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config(conn: Connection) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    with db.engine.begin() as conn:
        command.upgrade(_config(conn), revision)
        if db.is_sqlite:
            conn.commit()


def schema_differences(db: Database) -> list[object]:
    """What the migrated schema lacks or has beyond the models (empty when they match)."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))
