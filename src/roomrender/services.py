"""Everything a process needs, built once from Settings: database, storage, engine, queue, rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine as Database

from roomrender.config import Settings
from roomrender.db.database import check_schema, open_database, upgrade
from roomrender.engines import load_engine
from roomrender.engines.base import Engine
from roomrender.jobs.keys import KeyStore
from roomrender.jobs.queue import JobQueue
from roomrender.jobs.service import JobService
from roomrender.storage import Storage, open_storage
from roomrender.webhooks.delivery import Dispatcher
from roomrender.webhooks.outbox import OutboxHook
from roomrender.webhooks.signing import SecretStore
from roomrender.worker import Worker


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    engine: Engine
    queue: JobQueue
    keys: KeyStore
    jobs: JobService

    def new_worker(self, tasks: list[str] | None = None,
                   pipelines: list[str] | None = None) -> Worker:
        return Worker(self.settings, self.db, self.storage, self.engine, self.queue, tasks=tasks,
                      pipelines=pipelines)

    def new_dispatcher(self, **options: Any) -> Dispatcher:
        """A webhook dispatcher; options override the settings (schedule, timeout, ...)."""
        return Dispatcher(self.db, self.settings, **options)

    @property
    def webhook_secrets(self) -> SecretStore:
        return SecretStore(self.db, self.settings.webhook_secret_overlap_seconds)


def build_services(settings: Settings, engine: Engine | None = None) -> Services:
    db = open_database(settings.resolved_database_url())
    if settings.should_auto_migrate():
        upgrade(db)
    check_schema(db)
    storage = open_storage(settings.resolved_storage_url(), settings.public_base_url,
                           public_url=settings.storage_public_url or None,
                           presign_seconds=settings.storage_presign_seconds)
    engine = engine or load_engine(settings)
    queue = JobQueue(db, lease_seconds=settings.lease_seconds)
    services = Services(settings, db, storage, engine, queue, KeyStore(db),
                        JobService(settings, db, storage, engine, queue))
    queue.add_hook(OutboxHook(services))
    return services
