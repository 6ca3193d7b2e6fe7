"""Isolated test databases: on PostgreSQL each test gets its own fresh, migrated schema.

The schema is chosen through the connection's `search_path` (in the URL, so subprocesses started
with that URL see the same schema), and dropped when the test ends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from roomrender.db.database import open_database, upgrade


def is_postgresql(url: str) -> bool:
    return bool(url) and make_url(url).get_backend_name() == "postgresql"


def with_search_path(url: str, schema: str) -> str:
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


@contextmanager
def fresh_schema(url: str, *, migrate: bool = True) -> Iterator[str]:
    """A URL whose connections live in a new empty schema (migrated to head unless told not)."""
    schema = f"rr_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        isolated = with_search_path(url, schema)
        if migrate:
            db = open_database(isolated)
            try:
                upgrade(db)
            finally:
                db.dispose()
        yield isolated
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def isolated_database() -> Iterator[str]:
    """The test database URL: SQLite's default (empty), or a fresh PostgreSQL schema when
    ROOMRENDER_TEST_DATABASE_URL names one."""
    url = os.environ.get("ROOMRENDER_TEST_DATABASE_URL", "")
    if not is_postgresql(url):
        yield url
        return
    with fresh_schema(url) as isolated:
        yield isolated


def reachable(url: str) -> bool:
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 2})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False
