"""The metadata schema: identity tables and image tables, as SQLAlchemy Core.

Column names are the wire names (`owner`, `os_hash_value`, `member_id`) so rendering is a
straight mapping. Timestamps are naive UTC datetimes.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
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

# One row (id 1): a counter that triggers (migration 0011) move on, in the same transaction, with
# every change that can refuse a token or change its caller (a token revoked; a user, project, domain
# or role changed or deleted; a role assignment or implication added or removed). API nodes trust a
# cached token validation only while it has not moved (spyglass.identity.token_cache).
identity_generation = Table(
    "identity_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

# Failed password logins, one row each, for throttling (spyglass.identity.throttle). `subject`
# is a SHA-256 of the user named, so the table never holds what an attacker typed.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("failed_at", DateTime, nullable=False),
    Index(None, "address", "failed_at"),
    Index(None, "subject", "address", "failed_at"),
    Index(None, "failed_at"),
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
    # The store holding blob_key (the image's first location); null: the default store (rows
    # written before there were several stores). While data is staged: the store it is meant for.
    Column("store", String(64), nullable=True),
    Index(None, "owner", "created_at"),
    # Quotas sum a project's stored, staged and in-flight data by status (spyglass.images.quota_queries).
    Index(None, "owner", "status"),
    Index(None, "visibility", "created_at"),
    Index(None, "created_at", "id"),
    Index(None, "status"),
    # Glance's `name` filter is an exact match: the dashboard's search by name, `openstack image show NAME`.
    Index(None, "name"),
    # Blobs are shared by copies and identical uploads: "who else uses this blob" is a lookup.
    Index(None, "blob_key"),
)

# Every image id ever used, kept when the image goes (deleted, purged, its project deleted): an id
# is never given to a second image, so no one inherits another image's audit trail, members or
# clients. Ids are canonical lowercase UUIDs; the migration reserves the ids it knew of lowercased.
used_image_ids = Table(
    "used_image_ids",
    metadata,
    Column("id", String(36), primary_key=True),
)

# Further locations of an image's data, in other stores (copy-image, import to several stores).
# The first location is images.store/blob_key. Each blob key is written once, in one store, so a
# key names one (store, key) pair and spyglass.blob_refs counts it wherever it is referred to.
image_locations = Table(
    "image_locations",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("store", String(64), primary_key=True),
    Column("blob_key", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "blob_key"),
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

# ---- sharing safety: audit trail, usage, recycle bin, shared blobs, webhooks ---------------------

# The audit trail. No foreign key: events outlive the image, so that an ex-member still reads its
# own membership events and an owner the history of an image it deleted. `owner` is the image's
# owner when the event happened; `member_id` the member project concerned, if any.
image_events = Table(
    "image_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", String(36), nullable=False),
    Column("owner", String(255), nullable=True),
    Column("event_type", String(40), nullable=False),
    Column("member_id", String(255), nullable=True),
    Column("actor_user_id", String(64), nullable=True),
    Column("actor_project_id", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Index(None, "image_id", "id"),
    Index(None, "member_id", "image_id"),
)

# Data downloads, aggregated per image and consumer project (one UPSERT per download).
image_usage = Table(
    "image_usage",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", String(255), primary_key=True),
    Column("downloads", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("first_download_at", DateTime, nullable=False),
    Column("last_download_at", DateTime, nullable=False),
)

# Images in `pending_delete`: the status to restore and when the purge may remove them.
recycle_bin = Table(
    "recycle_bin",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("previous_status", String(30), nullable=False),
    Column("deleted_at", DateTime, nullable=False),
    Column("purge_after", DateTime, nullable=False),
    Column("deleted_by_user", String(64), nullable=True),
    Column("deleted_by_project", String(64), nullable=True),
    Index(None, "purge_after"),
)

# Stored blobs, reference-counted: copies and identical uploads share one blob, whose bytes are
# deleted when the last image referring to it goes. `store` is the blob store's name (empty for
# blobs recorded by the migration, which are never matched for deduplication).
blobs = Table(
    "blobs",
    metadata,
    Column("blob_key", String(255), primary_key=True),
    Column("store", String(64), nullable=False),
    Column("refcount", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("checksum", String(32), nullable=True),
    Column("os_hash_algo", String(64), nullable=True),
    Column("os_hash_value", String(128), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index(None, "store", "os_hash_value"),
)

# URLs a project registered to receive its sharing events. The secret signs each delivery, so it
# is kept as given (a hash could not sign); it is never shown again after creation.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("url", Text, nullable=False),
    # Sealed under the secret key (spyglass.secret_box): `sealed:v1:` and base64.
    Column("secret", Text, nullable=False),
    Column("created_by", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index(None, "project_id"),
)

# The outbox: one row per event and webhook, written in the event's transaction, so nothing is
# lost on a restart. Delivered rows are deleted; `dead` rows are the dead-letter record.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", String(36), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index(None, "status", "webhook_id", "id"),
)

# The message bus outbox (spyglass.audit.notifications): one row per notification, written in the
# transaction of the change it reports, deleted once the broker took it (spyglass.audit.bus). A node
# sending a row holds it until `claimed_until` (its `claimed_by` token); a failed send leaves the row
# for the next round.
notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("priority", String(10), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("claimed_by", String(36), nullable=True),
    Column("claimed_until", DateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
)

# Trusted owners: a consumer project (`project_id`) lets shares from one owner project, or from
# every project of one domain, start `accepted` (spyglass.sharing.trust). Exactly one of `owner`
# and `owner_domain` is set; duplicates are refused by the service, in the rule's transaction.
trusted_owners = Table(
    "trusted_owners",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("owner", String(64), nullable=True),
    Column("owner_domain", String(64), nullable=True),
    Column("created_by", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index(None, "project_id"),
    Index(None, "owner"),
)

# ---- domain shares ---------------------------------------------------------------------------------

# The member rows a domain share made (spyglass.sharing.domain_shares). The share itself is the
# image_members row `domain:<via_domain>`; each project of the domain has its own row there too,
# marked here. A project row without a mark is a direct share. The mark goes with its row.
image_member_origins = Table(
    "image_member_origins",
    metadata,
    Column("image_id", String(36), primary_key=True),
    Column("member_id", String(255), primary_key=True),
    Column("via_domain", String(64), nullable=False),
    ForeignKeyConstraint(
        ["image_id", "member_id"],
        ["image_members.image_id", "image_members.member_id"],
        ondelete="CASCADE",
    ),
    Index(None, "image_id", "via_domain"),
)

# Shares that end on a date: one row per member row that has an expiry. A table beside
# image_members rather than columns on it; removing the member row (by the owner, a project
# deletion, a purge) removes its expiry with it. `warned_at`: when member.expiring was sent, so that
# it is sent once (cleared when the owner moves the date).
image_member_expiries = Table(
    "image_member_expiries",
    metadata,
    Column("image_id", String(36), primary_key=True),
    Column("member_id", String(255), primary_key=True),
    Column("expires_at", DateTime, nullable=False),
    Column("warned_at", DateTime, nullable=True),
    ForeignKeyConstraint(
        ["image_id", "member_id"],
        ["image_members.image_id", "image_members.member_id"],
        ondelete="CASCADE",
    ),
    Index(None, "expires_at"),
)

# Deprecated images (spyglass.images.deprecation): the successor, when other projects lose the data
# (obsolete_at) and when the image is deleted (delete_at). The *_done_at columns are claimed with
# compare-and-set, so each warning and the deletion happen once however many nodes run the schedule.
# `previous_properties` keeps the SCS properties the deprecation overwrote, restored on undeprecate.
image_deprecations = Table(
    "image_deprecations",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("replacement", String(36), nullable=True),
    Column("deprecated_at", DateTime, nullable=False),
    Column("deprecated_by_user", String(64), nullable=True),
    Column("deprecated_by_project", String(64), nullable=True),
    Column("obsolete_at", DateTime, nullable=True),
    Column("delete_at", DateTime, nullable=True),
    Column("warned_at", DateTime, nullable=True),
    Column("deleted_at", DateTime, nullable=True),
    Column("previous_properties", JSON, nullable=False),
    Index(None, "obsolete_at"),
    Index(None, "delete_at"),
)

# ---- tasks ----------------------------------------------------------------------------------

# Glance's tasks (spyglass.data.tasks): one row per image import (`api_image_import`: glance-direct,
# web-download, copy-image; the id is the image's os_glance_import_task) and per task of the tasks
# API (`import`). `image_id` has no foreign key: a task outlives its image until it expires.
# `expires_at` is set when the task ends (success or failure) and the row goes after it.
tasks = Table(
    "tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("type", String(30), nullable=False),
    Column("status", String(30), nullable=False),
    Column("owner", String(255), nullable=True),
    Column("image_id", String(36), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("user_id", String(64), nullable=True),
    Column("input", JSON, nullable=True),
    Column("result", JSON, nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=True),
    Index(None, "owner", "created_at"),
    Index(None, "image_id"),
    Index(None, "expires_at"),
    Index(None, "created_at", "id"),
)

# ---- metadata definitions ----------------------------------------------------------------------

# Metadata definitions (spyglass.metadefs): namespaces of property descriptions that dashboards use
# to offer property editors. Names are unique where Glance makes them unique: a namespace name
# across the deployment, an object, property or tag name within its namespace (tags case-blind,
# through `name_key`), a resource type name across the deployment. The contents go with their
# namespace.
metadef_namespaces = Table(
    "metadef_namespaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(80), nullable=False, unique=True),
    Column("display_name", String(80), nullable=True),
    Column("description", Text, nullable=True),
    Column("visibility", String(32), nullable=False),
    Column("protected", Boolean, nullable=False),
    Column("owner", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
    Index(None, "owner"),
)

metadef_objects = Table(
    "metadef_objects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace_id", Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(80), nullable=False),
    Column("description", Text, nullable=True),
    Column("required", JSON, nullable=False),
    Column("properties", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
    UniqueConstraint("namespace_id", "name"),
)

metadef_properties = Table(
    "metadef_properties",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace_id", Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(80), nullable=False),
    # The property's JSON Schema fragment (title, type, enum, ...), without its name.
    Column("json_schema", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
    UniqueConstraint("namespace_id", "name"),
)

metadef_tags = Table(
    "metadef_tags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("namespace_id", Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(80), nullable=False),
    # The name in lower case: Glance's tag names are unique regardless of case.
    Column("name_key", String(80), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
    UniqueConstraint("namespace_id", "name_key"),
)

metadef_resource_types = Table(
    "metadef_resource_types",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False, unique=True),
    # Loaded from definition files (`spyglass metadefs load`) rather than made by an association.
    Column("protected", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
)

metadef_namespace_resource_types = Table(
    "metadef_namespace_resource_types",
    metadata,
    Column(
        "namespace_id",
        Integer,
        ForeignKey("metadef_namespaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "resource_type_id",
        Integer,
        ForeignKey("metadef_resource_types.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("prefix", String(80), nullable=True),
    Column("properties_target", String(80), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=True),
    Index(None, "resource_type_id"),
)


# ---- quotas --------------------------------------------------------------------------------------

# Keystone's unified limits (spyglass.identity.limits). A registered limit is the default of one
# resource of one service (and optionally region); a limit overrides it for one project or domain.
# `service_id` is an id of the built-in catalog (spyglass.identity.services); no foreign key, as
# that catalog is not a table.
registered_limits = Table(
    "registered_limits",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("region_id", String(64), nullable=True),
    Column("resource_name", String(255), nullable=False),
    Column("default_limit", Integer, nullable=False),
    Column("description", Text, nullable=True),
    Index(None, "service_id", "resource_name"),
)

# Exactly one of project_id and domain_id is set. A registered limit with limits cannot be deleted
# (Keystone's rule), hence no cascade.
project_limits = Table(
    "project_limits",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("registered_limit_id", String(64), ForeignKey("registered_limits.id"), nullable=False),
    Column("project_id", String(64), nullable=True),
    Column("domain_id", String(64), nullable=True),
    Column("resource_limit", Integer, nullable=False),
    Column("description", Text, nullable=True),
    Index(None, "project_id"),
    Index(None, "registered_limit_id"),
)

# Quota held by data in flight (spyglass.images.quotas): bytes an upload or a stage may still
# write, or an import is about to store, before the image's own row shows them. Written in the same
# transaction as the check, so concurrent transfers never promise the same headroom twice; removed
# in the transaction that records the data, when the transfer fails, and by start-up recovery.
quota_reservations = Table(
    "quota_reservations",
    metadata,
    Column("image_id", String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("resource_name", String(64), primary_key=True),
    Column("project_id", String(255), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index(None, "project_id", "resource_name"),
)

# Each project's count of images in a status that counts (all but killed and deleted), kept by
# triggers on `images` (migration 0017): the image_count_total quota reads one row. A later migration
# that rebuilds `images` on SQLite (Alembic's batch mode) drops them: it must create them again
# (tests/images/test_image_counts.py fails otherwise).
project_image_counts = Table(
    "project_image_counts",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("images", BigInteger, nullable=False),
)

# Per-project request rates (spyglass.images.rates): requests of one kind in one fixed window, one
# UPSERT per request, shared by every API node of the database.
request_counts = Table(
    "request_counts",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("action", String(32), primary_key=True),
    Column("window_start", DateTime, primary_key=True),
    Column("count", Integer, nullable=False),
    Index(None, "window_start"),
)
