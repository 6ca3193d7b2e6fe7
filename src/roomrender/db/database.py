"""Opening the database, and applying or checking its migrations."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaOutOfDate(RuntimeError):
    pass


def private_file(path: Path) -> None:
    """Create `path` (and its folder) readable by its owner only, or make it so: the database
    holds key hashes and webhook secrets. SQLite gives its -wal and -shm files the same mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except PermissionError:
        return  # read-only here; not ours to change
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    for suffix in ("-wal", "-shm"):
        journal = path.with_name(path.name + suffix)
        if journal.exists() and journal.stat().st_uid == os.getuid() and journal.stat().st_mode & 0o077:
            os.chmod(journal, 0o600)


def open_database(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and a file in an existing folder."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_file(Path(parsed.database))
        # Enough pooled connections for every thread of the server (the 40 of the request thread
        # pool, workers, dispatcher): a connection made on demand costs more than the query,
        # since SQLite reads the schema again on each new one.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=64, max_overflow=64)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration not yet applied (up to `revision`); nothing when a newer release
    already migrated the database further."""
    if is_ahead(current_revision(engine)):
        return
    config = _alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config("sqlite://"))


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_ahead(revision: str | None) -> bool:
    """Whether `revision` is one this code does not know: a newer release's migration. Its
    schema is this code's plus what the newer release added (migrations only add, so a release
    keeps running while the next one rolls out: docs/deploy.md)."""
    if revision is None:
        return False
    try:
        _scripts().get_revision(revision)
    except CommandError:
        return True
    return False


def check_schema(engine: Engine) -> None:
    """Raise SchemaOutOfDate with what to run when the database is behind the code (a schema
    ahead of it, a newer release's, is fine)."""
    current, head = current_revision(engine), head_revision()
    if current != head and not is_ahead(current):
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'}, this roomrender needs {head}: "
            "run `roomrender db upgrade`"
        )
