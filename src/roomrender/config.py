"""Settings, read once from the environment (ROOMRENDER_*) and passed down as one object."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROOMRENDER_", extra="ignore")

    data_dir: Path = Path("roomrender-data")
    # Empty means SQLite inside data_dir.
    database_url: str = ""
    # Empty means a folder inside data_dir; s3://bucket/prefix for an S3-compatible store.
    storage_url: str = ""
    # Object store only: where its objects are publicly readable (a public bucket or a CDN), so
    # result URLs are `<storage_public_url>/<key>`; empty: presigned URLs valid this long.
    storage_public_url: str = ""
    storage_presign_seconds: int = 3600
    # The base URL clients reach this server at; result URLs are built from it.
    public_base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # Stopping `serve` (SIGTERM): open requests and event streams get this long to end.
    shutdown_timeout_seconds: float = 30.0
    # `roomrender worker` / `webhooks` expose their Prometheus metrics on this port (None: not
    # at all; `serve` has /metrics), on this address.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Logs: "text" (lines for people) or "json" (one object per line, with job fields).
    log_format: Literal["text", "json"] = "text"

    engine: str = "preview"
    models_dir: Path | None = None
    # The diffusers engine: an operator's registry file (None: the packaged one), and where/how
    # it runs ("auto": CUDA in fp16 when there is a GPU, else CPU in float32).
    diffusers_registry: Path | None = None
    diffusers_device: str = "auto"
    diffusers_dtype: str = "auto"

    allow_private_urls: bool = False
    max_input_bytes: int = 20 * 1024 * 1024
    max_input_pixels: int = 40_000_000
    max_output_pixels: int = 64_000_000
    fetch_timeout_seconds: float = 15.0

    # None keeps results forever.
    result_ttl_seconds: int | None = None
    upload_ttl_seconds: int = 24 * 3600

    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    max_attempts: int = 3
    batch_max_images: int = 8
    batch_wait_ms: int = 5
    # Idle workers and webhook dispatchers are woken by the change feed when work arrives; these
    # are only their fallback polls.
    worker_poll_seconds: float = 5.0
    # Workers may be limited to some tasks (empty: all the engine supports).
    worker_tasks: list[str] = Field(default_factory=list)
    # ...and to some pipelines: batch keys equal to one of these or starting with it plus ":".
    worker_pipelines: list[str] = Field(default_factory=list)
    # A stopping worker lets its batch run this long, then hands its jobs back to the queue.
    worker_stop_grace_seconds: float = 30.0
    # A job queued this long while no worker showed itself (a claim, a heartbeat, a job ended)
    # is said to wait for a worker (the job, /readyz), instead of an ETA.
    no_worker_after_seconds: float = 15.0

    # Origins browsers may call the API from (keys travel in headers, never cookies); [] turns
    # CORS off. Spacely's browser clients call the API directly.
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])

    # Spacely's `standard` endpoint renders this many variants.
    spacely_standard_variants: int = 4
    # Luw's video generators (`video`, `motion`) cost this many credits a clip, as on Luw.
    luw_video_credits: int = Field(10, ge=0)
    # Luw's archigpt answers synchronously: the call waits this long for the answer, then
    # answers "processing" with the processing_url to poll.
    luw_chat_timeout_seconds: float = Field(120.0, gt=0, le=600)

    # Signs expiring URLs (Luw upload URLs). Empty: one is generated once and kept in data_dir,
    # so every process on a host signs alike (see roomrender.url_signing.server_secret).
    secret_key: str = ""
    # Webhooks: delivered by the `serve` process (see roomrender.webhooks.delivery).
    webhook_timeout_seconds: float = 10.0
    # Delay before each attempt (the Standard Webhooks schedule): the first is immediate.
    webhook_retry_schedule: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0])
    webhook_concurrency: int = 16
    # Fair shares of those slots (roomrender.webhooks.fairness): attempts in flight per key, and
    # the deadline of an attempt for a key whose receivers keep timing out.
    webhook_concurrency_per_key: int = 4
    webhook_slow_timeout_seconds: float = 2.0
    webhook_poll_seconds: float = 5.0
    # A claimed delivery is retried by another dispatcher if not recorded within this time.
    webhook_lease_seconds: float = 120.0
    # After a rotation the previous secret keeps signing (a second signature) this long.
    webhook_secret_overlap_seconds: float = 24 * 3600
    # Delivered and failed webhook messages are forgotten after this (None: kept forever).
    webhook_retention_seconds: int | None = 30 * 24 * 3600

    # Credits given to the key created on first start (None: unlimited).
    first_key_credits: int | None = None
    auto_migrate: bool | None = None

    # -- limits on what one client can take -----------------------------------------------
    # Outbound https (fetches, webhooks) checks certificates against this CA bundle instead of
    # certifi's roots (a private CA).
    outbound_ca_file: str = ""
    # Image fetches in flight on this process, and for one key (past it: 429).
    fetch_concurrency: int = 16
    fetch_per_key: int = 4
    # Every request body is cut off past this many bytes (413), while it streams in.
    max_body_bytes: int = 64 * 1024 * 1024
    # Requests per key, as the `limits` library writes them ("100/second", "10/second;500/minute");
    # empty: no limit. Each key may have its own (`roomrender keys create --rate-limit`).
    rate_limit: str = ""
    # Where the counts live: memory:// (one process) or redis://host:port (shared by processes).
    rate_limit_storage: str = "memory://"
    # Queued and running jobs one key may have at once (None: no cap); per key too.
    max_active_jobs: int | None = None
    # Event streams (/v1/jobs/{id}/events) one key may hold open on one API process.
    max_event_streams_per_key: int = 16

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'roomrender.db').resolve()}"

    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return f"file://{(self.data_dir / 'files').resolve()}"

    def should_auto_migrate(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.resolved_database_url().startswith("sqlite")
