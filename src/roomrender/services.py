"""Everything a process needs, built once from Settings: database, files, engine, queue, rules.

The wiring: it sits above the core and the dialects. The core never imports a dialect; what a
dialect adds to the core's loops (its webhook body) is registered here, from its plug.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine as Database

from roomrender.accounts.credits import CreditLedger
from roomrender.accounts.keys import KeyStore
from roomrender.accounts.teams import TeamStore
from roomrender.config import Settings
from roomrender.db.database import check_schema, open_database, upgrade
from roomrender.dialects import install_webhook_bodies
from roomrender.engines import load_engine
from roomrender.engines.base import Engine
from roomrender.janitor import Janitor
from roomrender.jobs.queue import JobQueue
from roomrender.jobs.service import JobService
from roomrender.jobs.watch import JobWatchers
from roomrender.logs import JobLogHook
from roomrender.metrics import JobMetricsHook
from roomrender.storage import Storage, open_storage
from roomrender.storage.files import FileStore
from roomrender.webhooks.bodies import WebhookBodies
from roomrender.webhooks.delivery import Dispatcher
from roomrender.webhooks.outbox import Outbox, OutboxHook
from roomrender.webhooks.signing import SecretStore
from roomrender.worker import Worker
from roomrender.workspace.boards import BoardStore
from roomrender.workspace.personas import PersonaStore


@dataclass
class Services:
    settings: Settings
    db: Database
    files: FileStore
    engine: Engine
    queue: JobQueue
    keys: KeyStore
    ledger: CreditLedger
    jobs: JobService
    outbox: Outbox
    webhook_bodies: WebhookBodies
    # The SSE streams' watchers, fed by the change feed (queue.feed).
    watchers: JobWatchers

    @property
    def storage(self) -> Storage:
        return self.files.storage

    @property
    def teams(self) -> TeamStore:
        return TeamStore(self.db, self.ledger)

    @property
    def boards(self) -> BoardStore:
        return BoardStore(self.jobs)

    @property
    def personas(self) -> PersonaStore:
        return PersonaStore(self.jobs)

    @property
    def webhook_secrets(self) -> SecretStore:
        return SecretStore(self.db, self.settings.webhook_secret_overlap_seconds)

    def new_worker(self, tasks: list[str] | None = None,
                   pipelines: list[str] | None = None) -> Worker:
        return Worker(self.settings, self.files, self.engine, self.queue, tasks=tasks,
                      pipelines=pipelines, key_prefix=self.keys.prefix_of)

    def new_dispatcher(self, **options: Any) -> Dispatcher:
        """A webhook dispatcher; options override the settings (schedule, timeout, ...)."""
        return Dispatcher(self.outbox, self.webhook_secrets, self.settings, **options)

    def new_janitor(self) -> Janitor:
        return Janitor(self.queue, self.files, self.outbox,
                       result_ttl_seconds=self.settings.result_ttl_seconds,
                       webhook_retention_seconds=self.settings.webhook_retention_seconds)


def build_services(settings: Settings, engine: Engine | None = None) -> Services:
    db = open_database(settings.resolved_database_url())
    if settings.should_auto_migrate():
        upgrade(db)
    check_schema(db)
    storage = open_storage(settings.resolved_storage_url(), settings.public_base_url,
                           public_url=settings.storage_public_url or None,
                           presign_seconds=settings.storage_presign_seconds)
    files = FileStore(db, storage)
    engine = engine or load_engine(settings)
    ledger = CreditLedger(db)
    queue = JobQueue(db, lease_seconds=settings.lease_seconds, ledger=ledger, files=files)
    jobs = JobService(settings, files, engine, queue, ledger)
    outbox = Outbox(db)
    bodies = WebhookBodies()
    install_webhook_bodies(bodies, public_base_url=settings.public_base_url, storage=storage)
    queue.add_hook(OutboxHook(outbox, bodies, jobs.present,
                              first_delay=(settings.webhook_retry_schedule or [0.0])[0]))
    keys = KeyStore(db, ledger)
    # After the outbox's hook: a change whose webhook could not be written is not counted.
    queue.add_hook(JobMetricsHook())
    queue.add_hook(JobLogHook(keys.prefix_of))
    return Services(settings, db, files, engine, queue, keys, ledger, jobs, outbox, bodies,
                    JobWatchers(queue, jobs.present))
