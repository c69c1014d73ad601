"""Shared fixtures.

Each test gets its own SQLite database, copied from a template that is migrated and populated once
per session (hashing passwords with Argon2 is deliberately slow, so users and tokens are made once).

The template holds: projects `alpha` and `beta` (domain Default) and `gamma` (domain `other`),
users `alice` (member of alpha), `bob` (member of beta), `carol` (member of gamma),
`rita` (reader of alpha), and `admin` (admin of project admin). `tokens[name]` is a
project-scoped token for each of them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.pool import NullPool
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.db.migrate import upgrade
from spyglass.identity import bootstrap as bs
from spyglass.identity.tokens import issue_token
from spyglass.settings import Settings

PASSWORD = "secret-password"
# name -> (project, domain name, role)
PEOPLE = {
    "alice": ("alpha", "Default", "member"),
    "bob": ("beta", "Default", "member"),
    "carol": ("gamma", "other", "member"),
    "rita": ("alpha", "Default", "reader"),
}


@dataclass
class World:
    tokens: dict[str, str]
    projects: dict[str, str]  # project name -> id
    users: dict[str, str]  # user name -> id


def _password_auth(user: str, project: str, domain: str) -> dict[str, object]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"name": domain}, "password": PASSWORD}},
            },
            "scope": {"project": {"name": project, "domain": {"name": domain}}},
        }
    }


# Set SPYGLASS_TEST_POSTGRES to a server URL (for example
# postgresql+psycopg://postgres@127.0.0.1:5432/postgres) to run the same tests on PostgreSQL:
# each test worker then gets a database cloned from the migrated template, and every test starts
# from the template's rows (PostgresWorkerDatabase).
POSTGRES = os.environ.get("SPYGLASS_TEST_POSTGRES", "")


def _postgres_admin() -> Engine:
    return create_engine(POSTGRES, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _database_url(name: str) -> str:
    return make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)


def _recreate(admin: Engine, name: str, template: str | None = None) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        if template and conn.dialect.server_version_info >= (15,):
            # Copying the template's files is about twice as fast as logging every page (the
            # default since PostgreSQL 15) for databases this small: ~120 ms against ~200 ms.
            suffix += " STRATEGY FILE_COPY"
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"{suffix}')


def _populate(db: Database) -> World:
    upgrade(db)
    bs.bootstrap(db, admin_password=PASSWORD)
    projects: dict[str, str] = {}
    users: dict[str, str] = {}
    with db.write() as conn:
        role_ids = bs.ensure_roles(conn)
        other = bs.ensure_domain(conn, "other")
        domain_ids = {"Default": bs.DEFAULT_DOMAIN_ID, "other": other}
        for user, (project, domain, role) in PEOPLE.items():
            projects[project] = bs.ensure_project(conn, project, domain_ids[domain])
            users[user], _ = bs.ensure_user(
                conn, user, domain_ids[domain], projects[project], role_ids[role], PASSWORD
            )
    tokens = {}
    for user, (project, domain, _) in {**PEOPLE, "admin": ("admin", "Default", "admin")}.items():
        tokens[user], _ = issue_token(db, _password_auth(user, project, domain), 86400)
    with db.read() as conn:
        projects["admin"] = str(conn.exec_driver_sql("SELECT id FROM projects WHERE name='admin'").scalar())
    return World(tokens, projects, users)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World]]:
    if POSTGRES:
        name = f"spyglass_tpl_{os.getpid()}"
        admin = _postgres_admin()
        _recreate(admin, name)
        db = Database(_database_url(name))
        world = _populate(db)
        db.dispose()
        yield name, world
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        return
    path = tmp_path_factory.mktemp("template") / "spyglass.db"
    db = Database(f"sqlite:///{path}")
    world = _populate(db)
    db.dispose()
    yield str(path), world


@pytest.fixture
def world(template: tuple[str, World]) -> World:
    return template[1]


class PostgresWorkerDatabase:
    """A test worker's own database, put back to the template's rows before each test.

    Cloning a database for every test took ~220 ms and dropping it ~55 ms, more than most tests
    take. Here the worker clones the template once and keeps a copy of every table in the schema
    `pristine`; a reset ends the previous test's connections and reloads the tables and sequences
    from that copy, which restores the same state.
    """

    def __init__(self, admin: Engine, template: str) -> None:
        self.name = f"spyglass_w_{os.getpid()}"
        self.url = _database_url(self.name)
        _recreate(admin, self.name, template)
        self.engine = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with self.engine.connect() as conn:
            tables = [
                f'"{name}"'
                for name in conn.exec_driver_sql(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
                ).scalars()
            ]
            conn.exec_driver_sql("CREATE SCHEMA pristine")
            for table in tables:
                conn.exec_driver_sql(f"CREATE TABLE pristine.{table} AS TABLE public.{table}")
            sequences = conn.exec_driver_sql(
                "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
            ).all()
        self.reset_script = "; ".join(
            [
                # The copy is consistent as a whole: no need to order the inserts by foreign key.
                "SET session_replication_role = replica",
                f"TRUNCATE {', '.join(f'public.{t}' for t in tables)}",
                *(f"INSERT INTO public.{t} SELECT * FROM pristine.{t}" for t in tables),
                "SET session_replication_role = DEFAULT",
                *(
                    f"SELECT setval('public.\"{name}\"', {value or 1}, {'true' if value else 'false'})"
                    for name, value in sequences
                ),
            ]
        )

    def reset(self) -> None:
        with self.engine.connect() as conn:
            # End the earlier tests' sessions (idle pooled connections), waiting until they are gone.
            # A session that came back meanwhile belongs to something still running: fail loudly
            # rather than let it write into this test's data.
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            left = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).scalar()
            if left:
                raise RuntimeError(f"{left} session(s) of an earlier test still use {self.name}")
            conn.exec_driver_sql(self.reset_script)

    def drop(self, admin: Engine) -> None:
        self.engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_worker(template: tuple[str, World]) -> Iterator[PostgresWorkerDatabase]:
    admin = _postgres_admin()
    worker = PostgresWorkerDatabase(admin, template[0])
    yield worker
    worker.drop(admin)
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, template: tuple[str, World], request: pytest.FixtureRequest) -> Settings:
    if not POSTGRES:
        shutil.copy(template[0], tmp_path / "spyglass.db")
        return Settings(data_dir=tmp_path, port=9292)
    worker: PostgresWorkerDatabase = request.getfixturevalue("postgres_worker")
    worker.reset()
    return Settings(data_dir=tmp_path, port=9292, database_url=worker.url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database)
    yield database
    database.dispose()


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    app = create_app(settings, db=db, store=FilesystemStore(settings.blob_dir))
    with TestClient(app, base_url="http://127.0.0.1:9292") as test_client:
        yield test_client


def app_settings(client: TestClient) -> Settings:
    settings: Settings = client.app.state.spyglass.settings  # type: ignore[attr-defined]
    return settings


def reconfigure(client: TestClient, **changes: Any) -> None:
    """Change settings of the client's running application (as a restart with them would)."""
    app = client.app
    wired = app.state.spyglass  # type: ignore[attr-defined]
    settings = dataclasses.replace(wired.settings, **changes)
    app.state.spyglass = dataclasses.replace(wired, settings=settings)  # type: ignore[attr-defined]


class Caller:
    """A TestClient bound to one user's token: `api.alice.get("/v2/images")`."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token

    def request(self, method: str, url: str, **kwargs: object):  # type: ignore[no-untyped-def]
        headers = {
            "X-Auth-Token": self.token,
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }  # type: ignore[dict-item]
        return self.client.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]

    def get(self, url: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.request("PUT", url, **kw)

    def delete(self, url: str, **kw: object):  # type: ignore[no-untyped-def]
        return self.request("DELETE", url, **kw)

    def patch(
        self,
        url: str,
        ops: list[dict[str, object]],
        media: str = "application/openstack-images-v2.1-json-patch",
    ):  # type: ignore[no-untyped-def]
        return self.request("PATCH", url, json=ops, headers={"Content-Type": media})

    def patch_json(self, url: str, body: object):  # type: ignore[no-untyped-def]
        """A plain JSON PATCH, as the Identity API takes it."""
        return self.request("PATCH", url, json=body)


class Callers:
    def __init__(self, client: TestClient, world: World) -> None:
        for name, token in world.tokens.items():
            setattr(self, name, Caller(client, token))
        self.anonymous = Caller(client, "")

    def __getattr__(self, name: str) -> Caller:  # for mypy: attributes are set dynamically
        raise AttributeError(name)


@pytest.fixture
def api(client: TestClient, world: World) -> Callers:
    return Callers(client, world)
