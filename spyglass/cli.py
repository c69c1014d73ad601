"""The `spyglass` command: serve, and database maintenance."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from spyglass import keystone_commands, keystone_settings, request_ids
from spyglass.audit.outbox import seal_clear_secrets
from spyglass.blobs import registry
from spyglass.blobs import specs as store_settings
from spyglass.data.imports import staging_store
from spyglass.data.recovery import Recovery, recover
from spyglass.data.tasks import time_to_live
from spyglass.db.engine import Database
from spyglass.db.migrate import schema_differences, upgrade
from spyglass.file_modes import tighten_dir
from spyglass.identity.bootstrap import Credentials, bootstrap
from spyglass.images.deletion import purge_expired
from spyglass.images.policy import use_policy_file
from spyglass.metadefs.loader import LoadOptions, load_directory
from spyglass.secret_box import SecretBox, SecretKeyError
from spyglass.settings import Settings, SettingsError, load_settings


def prepare(settings: Settings) -> Credentials:
    """Create the data directory, migrate the database, create what is missing, recover from a crash."""
    tighten_dir(settings.data_dir)
    box = SecretBox.of(settings)
    db = Database(settings.database)
    try:
        upgrade(db)
        seal_clear_secrets(db, box)
        # With an external Keystone, users and projects live there: nothing to create here.
        embedded = settings.identity == "embedded"
        creds = (
            bootstrap(db, admin_password=settings.admin_password, demo=settings.demo)
            if embedded
            else Credentials()
        )
        if db.is_sqlite:
            # Embedded mode: this process is the only writer, so whatever is mid-upload was cut
            # off by a crash. Several nodes sharing a server database cannot know that at start;
            # there the operator runs `spyglass recover` with every node stopped.
            stores = list(_stores(settings).values())
            _report(recover(db, stores, staging_store(settings), time_to_live(settings)))
        db.refresh_statistics()
        return creds
    finally:
        db.dispose()


def _report(recovery: Recovery) -> None:
    if recovery.requeued or recovery.orphans_removed or recovery.staged_removed:
        print(
            f"Recovered from an interrupted run: {recovery.requeued} image(s) back to queued, "
            f"{recovery.orphans_removed} unreferenced blob(s) and "
            f"{recovery.staged_removed} staged file(s) removed"
        )


def write_clouds_yaml(settings: Settings, creds: Credentials) -> Path | None:
    """Keep data_dir/clouds.yaml (mode 0600) in step with this start: add the clouds whose
    passwords were just created, and point the clouds Spyglass wrote before at the current public
    URL and region (their credentials kept), so that a changed port or `public_url` never leaves a
    client sending passwords to whatever now listens at the old address."""
    path = settings.data_dir / "clouds.yaml"
    data: dict[str, Any] = {"clouds": {}}
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {"clouds": {}}
    elif not creds.created:
        return None
    clouds = data.setdefault("clouds", {})
    moved = _follow_public_url(settings, clouds)
    for cloud, (user, password, project, domain) in creds.created.items():
        clouds[cloud] = {
            "auth": {
                "auth_url": _auth_url(settings),
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": domain,
                "project_domain_name": domain,
            },
            "region_name": settings.region,
            "interface": "public",
            "identity_api_version": 3,
            "image_api_version": 2,
        }
    if not creds.created and not moved:
        return None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # The mode of os.open applies only to a new file: an existing one is made private too.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


def _auth_url(settings: Settings) -> str:
    return f"{settings.base_url}/identity"


def _follow_public_url(settings: Settings, clouds: dict[str, Any]) -> bool:
    """Update the address of the clouds Spyglass wrote (named spyglass-*); True if any changed."""
    moved = False
    for name, cloud in clouds.items():
        if not name.startswith("spyglass-") or not isinstance(cloud, dict):
            continue
        auth = cloud.setdefault("auth", {})
        if auth.get("auth_url") != _auth_url(settings) or cloud.get("region_name") != settings.region:
            auth["auth_url"] = _auth_url(settings)
            cloud["region_name"] = settings.region
            moved = True
    return moved


def _announce(settings: Settings, creds: Credentials, clouds: Path | None) -> None:
    if "spyglass-admin" in creds.created and not settings.admin_password:
        print(f"Created user 'admin' with password: {creds.created['spyglass-admin'][1]}  (shown once)")
    if clouds is not None:
        written = ", ".join(sorted(creds.created)) or "the current address"
        print(f"Wrote {clouds} ({written}: {_auth_url(settings)})")
    clouds_file = (settings.data_dir / "clouds.yaml").resolve()
    if clouds_file.exists():
        print("Use it with the openstack client:")
        print(f"  export OS_CLIENT_CONFIG_FILE={clouds_file}")
        print("  openstack --os-cloud spyglass-a image list")
    identity = (
        f"{settings.base_url}/identity"
        if settings.identity == "embedded"
        else f"Keystone at {settings.keystone_authtoken.authenticate_uri}"
    )
    print(f"Spyglass listening on {settings.base_url} (identity: {identity})", flush=True)


WORKER_HEALTHCHECK_SECONDS = 30


def app_from_environment() -> Any:
    """uvicorn factory for `--workers N`: each worker reads the settings from SPYGLASS_* variables."""
    from spyglass.api.app import create_app

    return _long_lived(create_app(load_settings()))


def _long_lived(app: Any) -> Any:
    """The application, with everything made so far (modules, routes, settings: some 140,000
    objects) moved out of the garbage collector's sight. A full collection otherwise walks them all
    now and then, some 200 ms with the request in hand waiting (p99); they live as long as the
    process anyway."""
    gc.collect()
    gc.freeze()
    return app


def serve(settings: Settings, config_file: Path | None = None) -> None:
    import uvicorn

    from spyglass.api.app import create_app

    # A policy file that cannot be used stops the start before anything else happens.
    use_policy_file(settings.policy_path)
    creds = prepare(settings)
    _announce(settings, creds, write_clouds_yaml(settings, creds))
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_config": request_ids.log_config(settings.log_level),
    }
    if settings.workers > 1:
        for name, value in _as_environment(settings, config_file).items():
            os.environ[name] = value
        uvicorn.run(
            "spyglass.cli:app_from_environment",
            factory=True,
            workers=settings.workers,
            # uvicorn kills a worker that does not answer its supervisor's ping in time (5 s by
            # default): on a saturated machine a worker still importing at start-up can take longer.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **common,
        )
    else:
        uvicorn.run(_long_lived(create_app(settings)), **common)


def _as_environment(settings: Settings, config_file: Path | None = None) -> dict[str, str]:
    keys = (
        "host",
        "port",
        "data_dir",
        "database_url",
        "public_url",
        "region",
        "token_ttl_seconds",
        "login_failure_window_seconds",
        "login_failures_per_user_address",
        "login_failures_per_address",
        "password_check_concurrency",
        "password_check_queue",
        "workers",
        "threads",
        "image_member_quota",
        "image_size_cap",
        "max_request_body_bytes",
        "max_request_headers",
        "max_request_header_line_bytes",
        "max_request_header_bytes",
        "hashing_algorithm",
        "policy_file",
        "limit_param_default",
        "api_limit_max",
        "protect_consumers",
        "impact_window_days",
        "recycle_retention_days",
        "purge_interval_seconds",
        "task_time_to_live",
        "webhook_max_attempts",
        "webhook_retry_seconds",
        "webhook_poll_seconds",
        "disk_format_inspection",
        "web_download_allowed_networks",
        "web_download_timeout_seconds",
        "secret_key_file",
        "default_store",
        "show_image_direct_url",
        "show_multiple_locations",
        "identity",
        "validate_member_ids",
        "do_secure_hash",
        "image_cache",
        "image_cache_dir",
        "image_cache_max_size",
    )
    environment = {f"SPYGLASS_{k.upper()}": _environment_value(getattr(settings, k)) for k in keys}
    if config_file is not None:
        # The workers read the stores from the config file: their options hold credentials (Swift
        # keys, S3 secret keys), which must not sit in every process's environment.
        environment["SPYGLASS_CONFIG"] = str(config_file.resolve())
    else:
        # The stores travel as JSON (their options are tables, not strings).
        environment["SPYGLASS_STORES"] = store_settings.to_json(settings.stores)
        for name in keystone_settings.OPTIONS:
            value = getattr(settings.keystone_authtoken, name)
            environment[f"SPYGLASS_KEYSTONE_AUTHTOKEN_{name.upper()}"] = _environment_value(value)
    return environment


def _environment_value(value: object) -> str:
    # A list goes as one comma-separated string, the way settings read it from the environment.
    return ",".join(str(item) for item in value) if isinstance(value, tuple) else str(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spyglass", description="An OpenStack-compatible image service.")
    parser.add_argument("--config", type=Path, help="TOML config file (also SPYGLASS_CONFIG)")
    parser.add_argument("--data-dir", dest="data_dir", help="where the database and images live")
    parser.add_argument(
        "--database-url", dest="database_url", help="SQLAlchemy URL (default: SQLite in data dir)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run the API server")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--public-url", dest="public_url")
    run.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    run.add_argument("--threads", type=int, help="threads (and database connections) per worker")
    run.add_argument(
        "--demo", action="store_true", default=None, help="create two demo projects and clouds.yaml"
    )
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade", "check"])
    sub.add_parser("recover", help="after a crash: re-queue interrupted uploads, remove orphan blobs")
    sub.add_parser("purge", help="remove the images whose recycle bin retention has ended")
    keystone = sub.add_parser("keystone", help='identity = "keystone": the Keystone catalog')
    keystone.add_argument("action", choices=["register"])
    keystone.add_argument("--public-url", dest="register_url", required=True, help="Spyglass's URL")
    keystone.add_argument("--region", dest="register_region", default=None, help="default: region")
    keystone.add_argument(
        "--os-cloud",
        dest="os_cloud",
        help="an admin cloud of clouds.yaml (default: OS_* variables, else the service user)",
    )
    projects = sub.add_parser("projects", help='identity = "keystone": follow Keystone\'s projects')
    projects.add_argument("action", choices=["sync"])
    metadefs = sub.add_parser("metadefs", help="metadata definitions")
    metadefs_sub = metadefs.add_subparsers(dest="action", required=True)
    load = metadefs_sub.add_parser("load", help="load definition files in Glance's metadef JSON format")
    load.add_argument("directory", type=Path, help="directory of *.json definition files")
    load.add_argument("--merge", action="store_true", help="add what an existing namespace lacks")
    load.add_argument(
        "--prefer-new",
        dest="prefer_new",
        action="store_true",
        help="with --merge: also replace what an existing namespace has with the file's version",
    )
    load.add_argument(
        "--overwrite", action="store_true", help="with --merge: drop existing namespaces and load them again"
    )
    return parser


def _load_metadefs(database: Database, args: argparse.Namespace) -> int:
    if (args.prefer_new or args.overwrite) and not args.merge:
        print("spyglass: --prefer-new and --overwrite need --merge", file=sys.stderr)
        return 2
    options = LoadOptions(merge=args.merge, prefer_new=args.prefer_new, overwrite=args.overwrite)
    # An operator may load definitions before the first `serve`, which would create the tables.
    upgrade(database)
    try:
        report = load_directory(database, args.directory, options)
    except FileNotFoundError as exc:
        print(f"spyglass: {exc}", file=sys.stderr)
        return 2
    for outcome in ("created", "merged", "replaced", "skipped"):
        names = getattr(report, outcome)
        if names:
            print(f"{outcome}: {', '.join(names)}")
    for file_name, reason in report.failed.items():
        print(f"not loaded: {file_name}: {reason}", file=sys.stderr)
    return 1 if report.failed else 0


def _stores(settings: Settings) -> registry.StoreSet:
    return registry.build(settings.store_specs, settings.default_store_name)


# Command-line arguments that are not settings.
_NOT_SETTINGS: tuple[str, ...] = (
    "config",
    "command",
    "action",
    "directory",
    "merge",
    "prefer_new",
    "overwrite",
)
_NOT_SETTINGS += ("register_url", "register_region", "os_cloud")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}
    try:
        settings = load_settings(args.config, overrides=overrides)
    except SettingsError as exc:
        print(f"spyglass: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        config = args.config or (
            Path(os.environ["SPYGLASS_CONFIG"]) if "SPYGLASS_CONFIG" in os.environ else None
        )
        try:
            serve(settings, config)
        except (SecretKeyError, SettingsError) as exc:
            print(f"spyglass: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "keystone":
        return keystone_commands.register(settings, args.register_url, args.register_region, args.os_cloud)
    tighten_dir(settings.data_dir)
    database = Database(settings.database)
    try:
        if args.command == "projects":
            return keystone_commands.sync(settings, database)
        if args.command == "recover":
            stores = list(_stores(settings).values())
            _report(recover(database, stores, staging_store(settings), time_to_live(settings)))
            return 0
        if args.command == "metadefs":
            return _load_metadefs(database, args)
        if args.command == "purge":
            purged = purge_expired(database, _stores(settings))
            print(f"purged {purged} image(s) from the recycle bin")
            return 0
        if args.action == "upgrade":
            upgrade(database)
            print("database is at the latest revision")
            return 0
        differences = schema_differences(database)
        for difference in differences:
            print(difference)
        print("schema matches the models" if not differences else "schema differs from the models")
        return 1 if differences else 0
    finally:
        database.dispose()


if __name__ == "__main__":
    sys.exit(main())
