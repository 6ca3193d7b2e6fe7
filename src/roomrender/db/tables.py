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
    # Standard Webhooks signing secrets (whsec_...); the previous one signs too until it expires.
    Column("webhook_secret", String(64), nullable=True),
    Column("webhook_secret_previous", String(64), nullable=True),
    Column("webhook_secret_previous_expires_at", Float, nullable=True),
    # Limits of this key (NULL: the server's): requests as the `limits` library writes them
    # ("100/second"), and queued + running jobs at once.
    Column("rate_limit", String(200), nullable=True),
    Column("max_active_jobs", Integer, nullable=True),
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
    # Fair queuing: within a priority, jobs run in turn order (see JobService.submit).
    Column("turn", BigInteger, nullable=False, default=0),
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
    # The latest live preview (a short-lived file) while the job runs.
    Column("preview_key", String(128), nullable=True),
    # The GenerationRequest version of the API that wrote the job (canonical REQUEST_VERSION):
    # a worker claims only the versions it knows. Rows written before versions were: 1.
    Column("request_version", Integer, nullable=False, server_default="1"),
    UniqueConstraint("owner_id", "idempotency_key", name="uq_jobs_owner_idempotency"),
    Index("ix_jobs_queue", "status", "priority", "created_at"),
    # A claim walks its lane's queued jobs in turn order and skips those of a newer version
    # than its worker's without reading their rows.
    Index("ix_jobs_claims", "status", "engine", "priority", "turn", "request_version"),
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

# The webhook outbox: one row per event to deliver, written in the job transition's transaction.
webhook_messages = Table(
    "webhook_messages",
    metadata,
    # The `webhook-id`, the same on every attempt.
    Column("id", String(40), primary_key=True),
    Column("job_id", String(36), nullable=False, index=True),
    Column("owner_id", String(32), nullable=False),
    Column("event", String(32), nullable=False),
    Column("url", Text, nullable=False),
    # The exact body sent on every attempt.
    Column("payload", Text, nullable=False),
    # pending | delivered | failed
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    # A claimed row's next_attempt_at is pushed to the end of its lease, so a dispatcher that
    # dies mid-attempt only delays the message.
    Column("next_attempt_at", Float, nullable=True),
    Column("claim_token", String(32), nullable=True, index=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("delivered_at", Float, nullable=True),
    Index("ix_webhook_messages_due", "status", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(40), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    # delivered | retry | failed
    Column("outcome", String(16), nullable=False),
)

# The workspace (workspace/boards.py owns the three board tables, workspace/personas.py the two
# persona tables). `owner_id` is the key that made the object; ids are positive integers (Luw's
# client accepts nothing else).
boards = Table(
    "boards",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_id", String(32), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

board_folders = Table(
    "board_folders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("board_id", Integer, nullable=False, index=True),
    Column("parent_id", Integer, nullable=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
)

board_media = Table(
    "board_media",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("board_id", Integer, nullable=False, index=True),
    # NULL: the board's root.
    Column("folder_id", Integer, nullable=True),
    # Kept files (`files` rows of kind "kept", no expiry): the media and its optional source.
    Column("file_key", String(128), nullable=False),
    Column("control_key", String(128), nullable=True),
    Column("extras", Text, nullable=True),
    Column("created_at", Float, nullable=False),
)

personas = Table(
    "personas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_id", String(32), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("title", Text, nullable=True),
    Column("knows", Text, nullable=True),
    Column("profession", String(64), nullable=True, index=True),
    Column("generations_count", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

persona_trainings = Table(
    "persona_trainings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("persona_id", Integer, nullable=False, index=True),
    # 1-6 style images, 7 the default input image, 8+ free; NULL: a "liked" design, no slot.
    Column("slot", Integer, nullable=True),
    Column("file_key", String(128), nullable=False),
    Column("info", Text, nullable=True),
    Column("extras", Text, nullable=True),
    Column("created_at", Float, nullable=False),
)

# Teams (accounts/teams.py owns them; accounts/credits.py owns the credit columns of `teams`): a
# team's keys draw on one balance. A member is a key (user ids are positive integers, as Luw's
# client reads them); an invitation is answered once, by the key that presents its token.
teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    # NULL: unlimited.
    Column("credits_granted", BigInteger, nullable=True),
    Column("credits_used", BigInteger, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
)

team_members = Table(
    "team_members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", Integer, nullable=False, index=True),
    Column("key_id", String(32), nullable=False, unique=True),
    Column("email", String(320), nullable=True),
    # owner | admin | member
    Column("role", String(16), nullable=False),
    Column("joined_at", Float, nullable=False),
)

team_invitations = Table(
    "team_invitations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team_id", Integer, nullable=False, index=True),
    Column("email", String(320), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    # pending | accepted | declined
    Column("status", String(16), nullable=False),
    Column("invited_by", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("answered_at", Float, nullable=True),
)
