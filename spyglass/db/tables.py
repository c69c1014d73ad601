"""The metadata schema: identity tables and image tables, as SQLAlchemy Core.

Column names are the wire names (`owner`, `os_hash_value`, `member_id`) so rendering is a
straight mapping. Timestamps are naive UTC datetimes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# ---- identity -------------------------------------------------------------------------------

domains = Table(
    "domains",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("domain_id", String(64), ForeignKey("domains.id"), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    UniqueConstraint("domain_id", "name"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("domain_id", String(64), ForeignKey("domains.id"), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("email", String(255), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("default_project_id", String(64), nullable=True),
    UniqueConstraint("domain_id", "name"),
)

roles = Table(
    "roles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
)

# A prior role implies another one: admin -> member -> reader.
role_implications = Table(
    "role_implications",
    metadata,
    Column("prior_role_id", String(64), ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column("implied_role_id", String(64), ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)

# A role granted to a user on a project or on a domain (exactly one of the two is set).
role_assignments = Table(
    "role_assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("domain_id", String(64), ForeignKey("domains.id", ondelete="CASCADE"), nullable=True),
    Column("role_id", String(64), ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("user_id", "project_id", "domain_id", "role_id"),
    Index(None, "project_id"),
)

# Tokens are random secrets; only their SHA-256 is stored, so a database leak yields no
# usable token. Deleting the row revokes the token everywhere at once.
tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("audit_id", String(32), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("domain_id", String(64), ForeignKey("domains.id", ondelete="CASCADE"), nullable=True),
    Column("methods", String(255), nullable=False),
    Column("issued_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Index(None, "user_id"),
    Index(None, "expires_at"),
)

# ---- images ---------------------------------------------------------------------------------

images = Table(
    "images",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=True),
    Column("owner", String(255), nullable=True),
    Column("status", String(30), nullable=False),
    Column("visibility", String(20), nullable=False),
    Column("disk_format", String(20), nullable=True),
    Column("container_format", String(20), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("virtual_size", BigInteger, nullable=True),
    Column("checksum", String(32), nullable=True),
    Column("os_hash_algo", String(64), nullable=True),
    Column("os_hash_value", String(128), nullable=True),
    Column("min_disk", Integer, nullable=False, default=0),
    Column("min_ram", Integer, nullable=False, default=0),
    Column("protected", Boolean, nullable=False, default=False),
    Column("os_hidden", Boolean, nullable=False, default=False),
    Column("blob_key", String(255), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index(None, "owner", "created_at"),
    Index(None, "visibility", "created_at"),
    Index(None, "created_at", "id"),
    Index(None, "status"),
)

image_properties = Table(
    "image_properties",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "name", "value"),
)

image_tags = Table(
    "image_tags",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("value", String(255), primary_key=True),
    Index(None, "value"),
)

image_members = Table(
    "image_members",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", String(255), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # Listing "shared with me" starts from the member: without this index every non-admin
    # list reads the whole member table.
    Index(None, "member_id", "status"),
)
