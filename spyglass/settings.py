"""Typed, frozen deployment settings, read once from defaults, a TOML file, the environment and flags.

Precedence, lowest first: built-in defaults, the TOML config file, `SPYGLASS_*` environment
variables, command-line flags. Every value is validated here so the rest of the code can trust it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spyglass import keystone_settings
from spyglass.blobs import specs as store_settings
from spyglass.blobs.specs import StoreSettingsError, StoreSpec
from spyglass.keystone_settings import KeystoneAuthtoken, KeystoneSettingsError

ENV_PREFIX = "SPYGLASS_"


class SettingsError(ValueError):
    """A setting has a value Spyglass cannot run with."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 9292
    data_dir: Path = Path("./spyglass-data")
    # Empty means: SQLite file inside data_dir.
    database_url: str = ""
    # The URL clients use to reach this server; empty means http://{host}:{port}.
    public_url: str = ""
    region: str = "RegionOne"
    token_ttl_seconds: int = 86400
    # Failed password logins, counted in the database over a sliding window (README "Login
    # throttling"): per user and source address, and per source address for any user. Beyond a
    # limit, logins from that address (for that user) get 429 with Retry-After. 0 turns a limit off.
    login_failure_window_seconds: int = 300
    login_failures_per_user_address: int = 5
    login_failures_per_address: int = 50
    # Argon2 password checks running at once in each worker process (0: half the cores shared out
    # among the workers, at least one each) and how many more may wait for one; beyond that a login
    # gets 503 with Retry-After.
    password_check_concurrency: int = 0
    password_check_queue: int = 8
    admin_password: str = ""
    demo: bool = False
    # Images API limits, named as Glance names them.
    limit_param_default: int = 25
    api_limit_max: int = 1000
    image_member_quota: int = 128
    # Check that a new member is an existing, enabled project of the embedded identity service.
    # Turn off only when projects live in an external identity service that cannot be queried.
    validate_member_ids: bool = True
    image_size_cap: int = 1024**4
    # Every JSON request body (both APIs; image data has image_size_cap), refused with 413 while it
    # is read. The default holds the largest image document: 128 properties of 64 KiB, as a PATCH.
    max_request_body_bytes: int = 10 * 1024**2
    # Request headers, refused with 431 before any handler runs: how many, the longest one (name and
    # value; Glance's max_header_line), and all of them together.
    max_request_headers: int = 100
    max_request_header_line_bytes: int = 16 * 1024
    max_request_header_bytes: int = 64 * 1024
    hashing_algorithm: str = "sha512"
    # Inspect every upload and import for its real disk format (spyglass.inspect): refuse hostile or
    # mislabelled data and record virtual_size. Off: data is stored as sent and virtual_size stays null.
    disk_format_inspection: bool = True
    # web-download refuses loopback, private, link-local, multicast and unspecified addresses (after
    # DNS resolution, on every redirect). These networks (CIDR or single addresses) are allowed anyway.
    web_download_allowed_networks: tuple[str, ...] = ()
    # The longest a web-download may take, from the first connection to the last byte.
    web_download_timeout_seconds: int = 3600
    # The key that seals webhook secrets in the database (spyglass.secret_box): a file holding 32
    # random bytes in base64. Empty: data_dir/secret.key, created on first start. Nodes that share
    # one database must share the key: point every node at a copy of the same file.
    secret_key_file: str = ""
    # Worker processes: one per core by default. Each runs its blocking work (SQL, file reads) in at
    # most `threads` threads, and keeps that many database connections (and two more) open: a thread
    # never waits for a connection, and no connection is opened and closed per request.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    threads: int = 16
    log_level: str = "info"
    # Sharing safety (README "Making sharing safe"); the defaults keep Glance's behaviour.
    # Refuse to cut off recent consumers of images whose owner did not set spyglass_protect_consumers.
    protect_consumers: bool = False
    impact_window_days: int = 30
    # Days a deleted image stays restorable in pending_delete; 0 deletes at once, as Glance does.
    recycle_retention_days: int = 0
    purge_interval_seconds: int = 3600
    # The dashboard at /dashboard/ (spyglass.api.dashboard).
    dashboard: bool = True
    # Hours a task (spyglass.data.tasks) is kept after it ends, as Glance's [task] task_time_to_live;
    # expired tasks are purged every purge_interval_seconds.
    task_time_to_live: int = 48
    # Deprecation (spyglass.images.deprecation): days before obsolete_at that consumers get the
    # image.obsoleting warning, and how often each node looks for due warnings and deletions.
    deprecation_warning_days: int = 7
    deprecation_interval_seconds: int = 60
    # Webhook deliveries: attempts before a dead letter, first retry delay (doubling), outbox polling
    # (0 turns the delivery worker off).
    webhook_max_attempts: int = 8
    webhook_retry_seconds: int = 5
    webhook_poll_seconds: int = 1
    # Shares that end on a date: the member is warned (inbox, member.expiring) this many days ahead;
    # the server looks for due expiries and warnings this often.
    member_expiry_warning_days: int = 7
    member_expiry_poll_seconds: int = 30
    # Several stores at once (spyglass.store_settings); none configured: one filesystem store `fs`
    # in data_dir/images. `default_store` empty: the first store.
    stores: tuple[StoreSpec, ...] = ()
    default_store: str = ""
    # Show the data's locations on images, as Glance's options of the same names do.
    show_image_direct_url: bool = False
    show_multiple_locations: bool = False
    # Image signatures (spyglass.data.signatures): the signing certificates, as `<uuid>.pem` files in
    # this directory, and/or from a key manager through castellan, configured by this oslo.config
    # file (its `[key_manager]` and `[barbican]` sections, as in glance-api.conf). Neither set: a
    # signed image's data is refused, as Glance refuses it without a key manager.
    signature_certificate_dir: str = ""
    key_manager_config_file: str = ""
    # Glance's option: a location added through the locations API (v2.17) is read in the background
    # for its checksum and os_hash_value. Off: the caller's validation_data is taken as it is.
    do_secure_hash: bool = True
    # An oslo.policy file (YAML or JSON) whose rules override the default policy by name, as
    # Glance's policy.yaml does (spyglass.images.policy). Empty: the defaults alone.
    policy_file: str = ""
    # The local cache of image data held in remote stores (Swift, S3) on each node (spyglass.data.cache,
    # Glance's image cache and its API 2.14). Off, as in Glance; the directory, empty:
    # data_dir/image-cache; the most bytes of image data it keeps, least recently used out first.
    image_cache: bool = False
    image_cache_dir: str = ""
    image_cache_max_size: int = 10 * 1024**3
    # Quotas (README "Quotas"): Glance's four resources, limited by the unified limits of the image
    # service. A resource with no registered limit is unlimited; false: limits are kept, not enforced.
    quota_enforcement: bool = True
    # With identity = "keystone": seconds the unified limits read from Keystone are kept. A limit
    # changed in Keystone applies on every node within this time; 0 asks Keystone on every check.
    limits_cache_time: int = 5
    # Per-project request rates, shared by every node of the database: at most this many requests of
    # the kind per window (0: no limit), beyond which 429 with Retry-After.
    rate_limit_window_seconds: int = 60
    rate_limit_image_creates: int = 0
    rate_limit_uploads: int = 0
    rate_limit_imports: int = 0
    rate_limit_member_adds: int = 0
    # Who issues tokens: "embedded" (this service's own identity API at /identity) or "keystone" (an
    # existing Keystone, with the [keystone_authtoken] options; spyglass.identity.keystone).
    identity: str = "embedded"
    keystone_authtoken: KeystoneAuthtoken = field(default_factory=KeystoneAuthtoken)
    # Glance's notifications on the cloud's message bus (spyglass.audit.bus), through oslo.messaging:
    # the transport URL (empty: none sent), the exchange (Glance's control_exchange), the topics
    # (Glance's [oslo_messaging_notifications] topics), the publisher id (empty: image.<host name>)
    # and how often each node sends what the outbox holds.
    notifications_transport_url: str = ""
    notifications_exchange: str = "glance"
    notifications_topics: tuple[str, ...] = ("notifications",)
    notifications_publisher_id: str = ""
    notifications_poll_seconds: int = 1
    # Keystone's notifications, with identity = "keystone" (spyglass.sharing.project_events): deleted
    # and disabled projects applied as `spyglass projects sync` applies them. The transport (empty:
    # notifications_transport_url), Keystone's exchange (its control_exchange) and topic (its
    # [oslo_messaging_notifications] topics), and the listener pool: the nodes of one pool share one
    # queue, so that each message is handled by one of them.
    keystone_notifications_transport_url: str = ""
    keystone_notifications_exchange: str = "keystone"
    keystone_notifications_topic: str = "notifications"
    keystone_notifications_pool: str = "spyglass"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'spyglass.db').resolve()}"

    @property
    def keystone_listener_url(self) -> str:
        """Where Keystone's notifications are read; empty: they are not."""
        if self.identity != "keystone":
            return ""
        return self.keystone_notifications_transport_url or self.notifications_transport_url

    @property
    def policy_path(self) -> Path | None:
        return Path(self.policy_file).expanduser() if self.policy_file else None

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def store_specs(self) -> tuple[StoreSpec, ...]:
        """The configured stores, or the one filesystem store of a deployment that configures none."""
        return self.stores or (store_settings.filesystem("fs", self.blob_dir),)

    @property
    def default_store_name(self) -> str:
        return self.default_store or self.store_specs[0].name

    @property
    def staging_dir(self) -> Path:
        """Where `PUT /v2/images/{id}/stage` keeps data until the import call."""
        return self.data_dir / "staging"

    @property
    def image_cache_path(self) -> Path | None:
        """Where this node caches image data, or None when the cache is off."""
        if not self.image_cache:
            return None
        if self.image_cache_dir:
            return Path(self.image_cache_dir).expanduser()
        return self.data_dir / "image-cache"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    def validate(self) -> Settings:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be between 1 and 65535, not {self.port}")
        if self.token_ttl_seconds < 60:
            raise SettingsError("token_ttl_seconds must be at least 60")
        if not 1 <= self.limit_param_default <= self.api_limit_max:
            raise SettingsError("limit_param_default must be between 1 and api_limit_max")
        if self.image_member_quota < 0:
            raise SettingsError("image_member_quota must not be negative")
        self._validate_request_limits()
        if self.hashing_algorithm not in ("sha256", "sha384", "sha512"):
            raise SettingsError("hashing_algorithm must be one of sha256, sha384, sha512")
        self._validate_sharing_safety()
        self._validate_logins()
        self._at_least(1, "rate_limit_window_seconds")
        self._at_least(0, "limits_cache_time")
        self._at_least(
            0,
            "rate_limit_image_creates",
            "rate_limit_uploads",
            "rate_limit_imports",
            "rate_limit_member_adds",
        )
        self._validate_stores()
        self._validate_identity()
        self._at_least(1, "workers", "threads")
        if self.web_download_timeout_seconds < 1:
            raise SettingsError("web_download_timeout_seconds must be at least 1")
        self._validate_signature_sources()
        for network in self.web_download_allowed_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise SettingsError(f"web_download_allowed_networks: {network!r} is not a network") from exc
        return self

    def _validate_signature_sources(self) -> None:
        directory, config = self.signature_certificate_dir, self.key_manager_config_file
        if directory and not Path(directory).is_dir():
            raise SettingsError(f"signature_certificate_dir {directory!r} is not a directory")
        if config and not Path(config).is_file():
            raise SettingsError(f"key_manager_config_file {config!r} is not a file")

    def _validate_logins(self) -> None:
        if self.login_failure_window_seconds < 1:
            raise SettingsError("login_failure_window_seconds must be at least 1")
        self._at_least(
            0,
            "login_failures_per_user_address",
            "login_failures_per_address",
            "password_check_concurrency",
            "password_check_queue",
        )

    def _at_least(self, minimum: int, *names: str) -> None:
        for name in names:
            if getattr(self, name) < minimum:
                wanted = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
                raise SettingsError(f"{name} {wanted}")

    @property
    def database_connections(self) -> int:
        """The connection pool of a worker: one per thread, and two for good measure."""
        return self.threads + 2

    @property
    def password_checks_at_once(self) -> int:
        return self.password_check_concurrency or max(1, (os.cpu_count() or 1) // (2 * self.workers))

    def _validate_request_limits(self) -> None:
        if self.max_request_body_bytes < 1024:
            raise SettingsError("max_request_body_bytes must be at least 1024")
        if self.max_request_headers < 10:
            raise SettingsError("max_request_headers must be at least 10")
        if not 1024 <= self.max_request_header_line_bytes <= self.max_request_header_bytes:
            raise SettingsError(
                "max_request_header_line_bytes must be at least 1024 and at most max_request_header_bytes"
            )

    def _validate_identity(self) -> None:
        if self.identity not in ("embedded", "keystone"):
            raise SettingsError('identity must be "embedded" or "keystone"')
        if self.identity == "keystone":
            try:
                self.keystone_authtoken.validate()
            except KeystoneSettingsError as exc:
                raise SettingsError(str(exc)) from exc
        for name in ("keystone_notifications_exchange", "keystone_notifications_topic"):
            if not getattr(self, name).strip():
                raise SettingsError(f"{name} must not be empty")
        if not self.keystone_notifications_pool.strip():
            # Without a pool the listener would read Keystone's own `notifications.info` queue and
            # take the messages other consumers (Ceilometer) wait for.
            raise SettingsError("keystone_notifications_pool must not be empty")

    def _validate_stores(self) -> None:
        names = [spec.name for spec in self.store_specs]
        if len(set(names)) != len(names):
            raise SettingsError("store names must be unique")
        if self.default_store_name not in names:
            raise SettingsError(f"default_store {self.default_store!r} is not one of the stores")

    def _validate_sharing_safety(self) -> None:
        self._at_least(
            0,
            "impact_window_days",
            "recycle_retention_days",
            "webhook_retry_seconds",
            "member_expiry_warning_days",
            "deprecation_warning_days",
        )
        self._at_least(1, "image_cache_max_size")
        self._at_least(
            1,
            "purge_interval_seconds",
            "webhook_max_attempts",
            "deprecation_interval_seconds",
            "task_time_to_live",
        )
        if self.webhook_poll_seconds < 0:
            raise SettingsError("webhook_poll_seconds must not be negative")
        if self.notifications_poll_seconds < 1:
            raise SettingsError("notifications_poll_seconds must be at least 1")
        if self.notifications_transport_url and not self.notifications_topics:
            raise SettingsError("notifications_topics must name at least one topic")
        # At most a minute: an expired share must end within a minute of its date.
        if not 1 <= self.member_expiry_poll_seconds <= 60:
            raise SettingsError("member_expiry_poll_seconds must be between 1 and 60")


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in ("extra", "keystone_authtoken")}


def _coerce(name: str, raw: Any) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "int":
            return int(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(str(raw)).expanduser()
        if kind == "tuple[StoreSpec, ...]":
            return store_settings.parse(raw)
        if kind == "tuple[str, ...]":
            # A TOML list, or one comma-separated string (environment variables, flags).
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        return str(raw)
    except StoreSettingsError as exc:
        raise SettingsError(str(exc)) from exc
    except ValueError as exc:
        raise SettingsError(f"setting {name!r} has an invalid value {raw!r}") from exc


def load_settings(
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Merge the layers into one validated Settings."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    authtoken: dict[str, Any] = {}
    config_file = config_file or (
        Path(environ[ENV_PREFIX + "CONFIG"]) if ENV_PREFIX + "CONFIG" in environ else None
    )
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc}") from exc
        section = data.get("spyglass", data)
        if section is not data and "stores" in data:
            # `[stores.NAME]` tables beside a `[spyglass]` section.
            section = {**section, "stores": data["stores"]}
        authtoken = data.get("keystone_authtoken", section.get("keystone_authtoken", {}))
        section = {key: raw for key, raw in section.items() if key != "keystone_authtoken"}
        for key, raw in section.items():
            if key not in _FIELDS:
                raise SettingsError(f"unknown setting {key!r} in {config_file}")
            values[key] = _coerce(key, raw)
    try:
        values["keystone_authtoken"] = keystone_settings.parse(authtoken, environ, ENV_PREFIX)
    except KeystoneSettingsError as exc:
        raise SettingsError(str(exc)) from exc
    for name in _FIELDS:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _coerce(name, environ[env_name])
    for key, raw in (overrides or {}).items():
        if raw is not None:
            values[key] = _coerce(key, raw)
    return Settings(**values).validate()
