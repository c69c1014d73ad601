"""metadata definitions: namespaces, their objects, properties and tags, resource types and associations

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 05:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
    ]


def _in_namespace(table: str) -> list[sa.Column[object] | sa.Constraint]:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["metadef_namespaces.id"],
            name=op.f(f"fk_{table}_namespace_id_metadef_namespaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "metadef_namespaces",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("namespace", sa.String(length=80), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("visibility", sa.String(length=32), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadef_namespaces")),
        sa.UniqueConstraint("namespace", name=op.f("uq_metadef_namespaces_namespace")),
    )
    op.create_index(op.f("ix_metadef_namespaces_owner"), "metadef_namespaces", ["owner"])
    op.create_table(
        "metadef_objects",
        *_in_namespace("metadef_objects"),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("required", sa.JSON(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name", name=op.f("uq_metadef_objects_namespace_id_name")),
    )
    op.create_table(
        "metadef_properties",
        *_in_namespace("metadef_properties"),
        sa.Column("json_schema", sa.JSON(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name", name=op.f("uq_metadef_properties_namespace_id_name")),
    )
    op.create_table(
        "metadef_tags",
        *_in_namespace("metadef_tags"),
        sa.Column("name_key", sa.String(length=80), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("namespace_id", "name_key", name=op.f("uq_metadef_tags_namespace_id_name_key")),
    )
    op.create_table(
        "metadef_resource_types",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadef_resource_types")),
        sa.UniqueConstraint("name", name=op.f("uq_metadef_resource_types_name")),
    )
    op.create_table(
        "metadef_namespace_resource_types",
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("resource_type_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=80), nullable=True),
        sa.Column("properties_target", sa.String(length=80), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["metadef_namespaces.id"],
            name=op.f("fk_metadef_namespace_resource_types_namespace_id_metadef_namespaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_type_id"],
            ["metadef_resource_types.id"],
            name=op.f("fk_metadef_namespace_resource_types_resource_type_id_metadef_resource_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "namespace_id", "resource_type_id", name=op.f("pk_metadef_namespace_resource_types")
        ),
    )
    op.create_index(
        op.f("ix_metadef_namespace_resource_types_resource_type_id"),
        "metadef_namespace_resource_types",
        ["resource_type_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_metadef_namespace_resource_types_resource_type_id"),
        table_name="metadef_namespace_resource_types",
    )
    op.drop_table("metadef_namespace_resource_types")
    op.drop_table("metadef_resource_types")
    op.drop_table("metadef_tags")
    op.drop_table("metadef_properties")
    op.drop_table("metadef_objects")
    op.drop_index(op.f("ix_metadef_namespaces_owner"), table_name="metadef_namespaces")
    op.drop_table("metadef_namespaces")
