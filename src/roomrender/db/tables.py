"""The schema, as SQLAlchemy Core tables. Times are epoch seconds (float) on every backend."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    # NULL: unlimited.
    Column("credits_granted", BigInteger, nullable=True),
    Column("credits_used", BigInteger, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_id", String(32), nullable=False, index=True),
    Column("dialect", String(16), nullable=False),
    Column("task", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("engine", String(32), nullable=False),
    # Jobs with the same batch key may run in one engine batch.
    Column("batch_key", String(200), nullable=False),
    Column("request", JSON, nullable=False),
    Column("cost", Integer, nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("progress", Float, nullable=False, default=0.0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("claim_token", String(32), nullable=True, index=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("idempotency_key", String(255), nullable=True),
    Column("request_hash", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("outputs", JSON, nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    UniqueConstraint("owner_id", "idempotency_key", name="uq_jobs_owner_idempotency"),
    Index("ix_jobs_queue", "status", "priority", "created_at"),
)

files = Table(
    "files",
    metadata,
    # The storage key; unguessable, and also the id of an upload.
    Column("key", String(128), primary_key=True),
    Column("owner_id", String(32), nullable=True, index=True),
    Column("kind", String(16), nullable=False),
    Column("job_id", String(36), nullable=True, index=True),
    Column("name", String(255), nullable=True),
    Column("content_type", String(64), nullable=True),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True, index=True),
)
