"""The worker loop: claim a batch → load inputs → engine.generate → store outputs → succeed.

A heartbeat thread keeps the claim's lease alive while the engine runs and picks up
cancellations; a worker that dies simply stops heartbeating and its jobs are claimed again.
A worker told to stop finishes its batch, or after `worker_stop_grace_seconds` hands the batch's
jobs back to the queue at once (`JobQueue.release`).
"""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from roomrender import logs, metrics
from roomrender.artifact_files import ArtifactFiles, files_for
from roomrender.canonical.errors import Unavailable
from roomrender.canonical.models import REQUEST_VERSION
from roomrender.config import Settings
from roomrender.engines.base import (
    Artifact,
    BatchCanceled,
    BatchContext,
    Engine,
    EngineJob,
    discard_artifact_files,
)
from roomrender.events.feed import Change
from roomrender.jobs.live_text import LiveText
from roomrender.jobs.queue import Claim, JobQueue
from roomrender.jobs.records import JobRecord
from roomrender.storage import new_key
from roomrender.storage.files import FileStore, NewFile, output_keys
from roomrender.trouble import Trouble

log = logging.getLogger("roomrender.worker")

PROGRESS_WRITE_SECONDS = 0.25
# How long stored outputs of a job not (yet) succeeded are kept before the janitor removes them.
PENDING_OUTPUT_SECONDS = 3600.0
# Live previews are short-lived files: the janitor removes them after this.
PREVIEW_SECONDS = 600.0


class _ClaimTracker:
    """Progress and cancellation of one claim, shared by the engine and the heartbeat thread."""

    def __init__(self, queue: JobQueue, claim: Claim) -> None:
        self.queue = queue
        self.claim = claim
        self.job_ids = [record.id for record in claim.rows]
        self.canceled: set[str] = set()
        self.handed_back = False
        # What its log lines are about (a hand-back is logged from another thread).
        self.log_fields: dict[str, Any] = dict(logs.fields())
        self._pending: dict[str, float] = {}
        self._highest: dict[str, float] = {}
        self._last_write = 0.0
        self._lock = threading.Lock()

    def report(self, job_id: str, fraction: float) -> None:
        with self._lock:
            # A job's progress never goes back: an engine may run in phases that each count
            # from zero (a slow preprocessing pass, then one image after another).
            highest = max(fraction, self._highest.get(job_id, 0.0))
            if highest == self._highest.get(job_id):
                return
            self._highest[job_id] = highest
            self._pending[job_id] = highest
            due = time.monotonic() - self._last_write >= PROGRESS_WRITE_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_write = time.monotonic()
        if pending:
            self.queue.set_progress(self.claim.token, pending)

    def is_canceled(self, job_id: str) -> bool:
        return job_id in self.canceled

    def owner_of(self, job_id: str) -> str:
        return next(record.owner_id for record in self.claim.rows if record.id == job_id)

    def heartbeat(self) -> None:
        stopped = self.queue.heartbeat(self.claim.token, self.job_ids)
        for job_id in stopped - self.canceled:
            self.queue.cancel_running(job_id, self.claim.token)
        self.canceled |= stopped

    def hand_back(self) -> None:
        """Put the claim's jobs back in the queue; the engine sees them canceled and stops."""
        self.handed_back = True
        self.canceled |= set(self.job_ids)
        released = self.queue.release(self.claim.token)
        if released:
            metrics.JOBS_HANDED_BACK.labels(self.claim.rows[0].engine).inc(len(released))
            with logs.bound(**self.log_fields):
                log.info("handed %d running job(s) back to the queue: %s", len(released),
                         ", ".join(released))


class Worker:
    def __init__(self, settings: Settings, files: FileStore, engine: Engine,
                 queue: JobQueue, *, worker_id: str | None = None,
                 tasks: list[str] | None = None, pipelines: list[str] | None = None,
                 key_prefix: Callable[[str], str | None] | None = None,
                 request_version: int = REQUEST_VERSION) -> None:
        self.settings = settings
        self.files = files
        self.engine = engine
        self.queue = queue
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.tasks = tasks or list(settings.worker_tasks) or [t.value for t in engine.supported_tasks()]
        self.pipelines = pipelines or list(settings.worker_pipelines) or None
        # The newest request version this worker's code knows: it claims no job written by a
        # newer API (that job waits, queued, for an upgraded worker).
        self.request_version = request_version
        self.max_images = min(settings.batch_max_images, engine.max_batch_images)
        self._finisher: ThreadPoolExecutor | None = None
        self._finishing = 0  # batches being stored on the finisher thread
        self._finishing_lock = threading.Lock()
        # Retries after a failure start short: the poll is only a fallback (the feed wakes it).
        self.trouble = Trouble(f"worker {self.worker_id}",
                               base_seconds=min(settings.worker_poll_seconds, 0.2), logger=log)
        # At most this many finished batches wait for storage while the next one runs.
        self._finish_slots = threading.Semaphore(2)
        self.previews = _PreviewSink(self._store_preview)
        self.texts = LiveText(self._announce_text)
        # key id -> public prefix, for log lines (KeyStore.prefix_of).
        self.key_prefix = key_prefix or (lambda _key_id: None)
        # Stopping: the claim in the engine (handed back if the grace runs out), under a lock.
        self._engine_lock = threading.Lock()
        self._in_engine: _ClaimTracker | None = None
        self._engine_idle = threading.Event()
        self._engine_idle.set()
        self._stopping = False

    def run(self, stop: threading.Event) -> None:
        """Serve until `stop`. Outputs are encoded and stored on a separate thread while the
        engine already runs the next batch."""
        log.info("worker %s serving %s%s with engine %s (requests up to version %d)",
                 self.worker_id, ",".join(self.tasks),
                 f" (pipelines {','.join(self.pipelines)})" if self.pipelines else "",
                 self.engine.name, self.request_version)
        self._finisher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="finish")
        threading.Thread(target=self._hand_back_when_stopped, args=(stop,), name="stop-watch",
                         daemon=True).start()
        # Idle, the worker sleeps until a job of its engine is queued (the change feed rings),
        # or worker_poll_seconds at most: a fallback, not the way it finds work.
        bell = self.queue.queued_doorbell(self.engine.name)
        bell.ring_when_set(stop)
        try:
            while not stop.is_set():
                metrics.worker_seen(self.worker_id)
                try:
                    worked = self.run_once()
                except Exception as failure:
                    self.trouble.failed(failure)
                    worked = False
                else:
                    if not worked and not self._finishing:
                        self.trouble.cleared()  # the database answers, nothing left to store
                if self.trouble.failing:
                    stop.wait(self.trouble.delay())
                elif not worked:
                    bell.wait(self.settings.worker_poll_seconds)
        finally:
            bell.close()
            self._finisher.shutdown(wait=True)
            self._finisher = None

    def _hand_back_when_stopped(self, stop: threading.Event) -> None:
        """Once `stop` is set, give the batch in the engine `worker_stop_grace_seconds` to end,
        then hand its jobs back to the queue."""
        stop.wait()
        with self._engine_lock:
            self._stopping = True
        if self._engine_idle.wait(self.settings.worker_stop_grace_seconds):
            return
        with self._engine_lock:
            tracker = self._in_engine
        if tracker is not None and not tracker.handed_back:
            try:
                tracker.hand_back()
            except Exception:
                log.exception("handing a batch back failed; its jobs run again when the lease ends")

    def run_once(self) -> bool:
        """Claim and run one batch; False when the queue had nothing for this worker."""
        claim = self.queue.claim(self.worker_id, self.engine.name, tasks=self.tasks,
                                 pipelines=self.pipelines, request_version=self.request_version,
                                 max_images=self.max_images)
        if claim is None:
            return False
        images = sum(record.cost for record in claim.rows)
        if images < self.max_images and self.settings.batch_wait_ms > 0:
            # A moment's wait lets jobs submitted together share one batch.
            time.sleep(self.settings.batch_wait_ms / 1000)
            claim = self.queue.claim_more(self.worker_id, claim, self.max_images - images,
                                          tasks=self.tasks, request_version=self.request_version)
        with logs.bound(**self._batch_about(claim)):
            self._run_claim(claim)
        return True

    def _enter_engine(self, tracker: _ClaimTracker) -> None:
        with self._engine_lock:
            self._in_engine, stopping = tracker, self._stopping
            self._engine_idle.clear()
        if stopping:  # claimed as the stop came: straight back to the queue
            tracker.hand_back()

    def _leave_engine(self) -> None:
        with self._engine_lock:
            self._in_engine = None
            self._engine_idle.set()

    def _run_claim(self, claim: Claim) -> None:
        tracker = _ClaimTracker(self.queue, claim)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.settings.heartbeat_seconds):
                try:
                    tracker.heartbeat()
                    metrics.worker_seen(self.worker_id, heartbeat=True)
                except Exception:
                    log.exception("heartbeat failed")

        # The lease is kept alive until the outputs are stored, wherever that happens.
        threading.Thread(target=logs.carried(beat), name="heartbeat", daemon=True).start()
        self._enter_engine(tracker)
        try:
            batch = self._load_inputs(claim, tracker) if not tracker.handed_back else []
            context = BatchContext(tracker.report, tracker.is_canceled,
                                   lambda job_id, image: self.previews.offer(tracker, job_id, image),
                                   self.texts.offer)
            started = time.monotonic()
            try:
                results = self.engine.generate(batch, context) if batch else []
            except BatchCanceled:
                results = [BatchCanceled() for _ in batch]
            except Exception as failure:
                log.exception("engine failed a batch of %d", len(batch))
                results = [failure for _ in batch]
            if batch:
                metrics.batch_ran(self.engine.name, claim.rows, time.monotonic() - started)
            tracker.flush()
            self.texts.flush([job.job_id for job in batch])  # every piece before the job ends
        except BaseException:
            done.set()
            raise
        finally:
            self._leave_engine()

        def finish() -> None:
            try:
                tracker.heartbeat()
                self._finish(batch, results, claim, tracker)
            except Unavailable as failure:
                # The store or the database, not the jobs: back to the queue, no attempt counted.
                self.trouble.failed(failure)
                self._release(claim)
            except Exception:
                log.exception("finishing a batch failed")
            finally:
                discard_artifact_files(results)  # stored by now, or never to be
                done.set()

        if self._finisher is None:
            finish()
            return
        self._finish_slots.acquire()
        with self._finishing_lock:
            self._finishing += 1
        future = self._finisher.submit(logs.carried(finish))

        def finished(_: object) -> None:
            with self._finishing_lock:
                self._finishing -= 1
            self._finish_slots.release()

        future.add_done_callback(finished)

    def _release(self, claim: Claim) -> None:
        try:
            self.queue.release(claim.token)
        except Exception as failure:
            log.warning("handing a batch back failed (%s); its jobs run again when the lease ends",
                        failure)

    def _load_inputs(self, claim: Claim, tracker: _ClaimTracker) -> list[EngineJob]:
        batch: list[EngineJob] = []
        for record in claim.rows:
            try:
                request = record.generation_request()
            except ValueError as unreadable:  # pydantic's ValidationError is a ValueError
                # Claimed only at a version this worker knows: a request it cannot read is broken.
                self.queue.fail(record.id, "invalid_request",
                                f"the stored request could not be read: {unreadable}",
                                token=claim.token)
                continue
            try:
                images: dict[str, Image.Image] = {
                    name: Image.open(io.BytesIO(self.files.storage.get(key)))
                    for name, key in request.image_refs().items()
                }
                for image in images.values():
                    image.load()
            except Exception as missing:
                self.queue.fail(record.id, "input_unavailable",
                                f"an input image could not be read: {missing}", token=claim.token)
                continue
            batch.append(EngineJob(record.id, request, images))
        return batch

    def _finish(self, batch: list[EngineJob], results: list[Any], claim: Claim,
                tracker: _ClaimTracker) -> None:
        """End every job of the batch; the successful ones are stored, then succeeded together
        in one transaction (a batch costs a few commits, not a few per job)."""
        ready: list[tuple[EngineJob, Sequence[Artifact]]] = []
        for job, result in zip(batch, results, strict=True):
            if tracker.is_canceled(job.job_id) or isinstance(result, BatchCanceled):
                self.queue.cancel_running(job.job_id, claim.token)
            elif isinstance(result, Exception):
                code = getattr(result, "code", "generation_failed")
                message = getattr(result, "message", None) or f"{type(result).__name__}: {result}"
                self.queue.fail(job.job_id, code, message, token=claim.token)
            else:
                ready.append((job, result))
        if not ready:
            return
        stored: dict[str, list[dict[str, Any]]] = {}
        waiting: list[str] = []
        for job_id, outcome in self._store(ready, claim).items():
            if isinstance(outcome, Unavailable):
                waiting.append(job_id)
                self.trouble.failed(outcome)
            elif isinstance(outcome, Exception):
                self.queue.fail(job_id, "storage_failed",
                                f"the outputs could not be stored: {outcome}", token=claim.token)
            else:
                stored[job_id] = outcome
        # The storage is full or read-only: these jobs run again once it takes files again.
        self.queue.release(claim.token, waiting)
        if stored and not waiting:
            self.trouble.cleared()
        expires_at = (time.time() + self.settings.result_ttl_seconds
                      if self.settings.result_ttl_seconds else None)
        succeeded = self.queue.succeed_many(claim.token, stored, expires_at)
        for job_id, outputs in stored.items():
            if job_id not in succeeded:
                # Canceled or taken over meanwhile: nobody will ever see these files.
                self._discard(outputs)

    def _store(self, ready: list[tuple[EngineJob, Sequence[Artifact]]],
               claim: Claim) -> dict[str, list[dict[str, Any]] | Exception]:
        """Encode and store each job's artifacts, each with its content type: its output records,
        or why they could not be stored.

        They are stored as pending: they expire soon unless `queue.succeed_many` adopts them, so
        the janitor removes what a worker that died before succeeding left in the store."""
        owners = {row.id: row.owner_id for row in claim.rows}
        rows = {row.id: row for row in claim.rows}
        outcome: dict[str, list[dict[str, Any]] | Exception] = {}
        encoded: dict[str, list[ArtifactFiles]] = {}
        for job, artifacts in ready:
            try:
                encoded[job.job_id] = [files_for(artifact, job.request.output_format)
                                       for artifact in artifacts]
            except Exception as failure:
                with logs.bound(**self._about(rows[job.job_id])):
                    log.exception("encoding outputs of %s failed", job.job_id)
                outcome[job.job_id] = failure
        groups = {job_id: (owners[job_id], [new for item in items for new in item.files])
                  for job_id, items in encoded.items()}
        failed = self.files.save_pending(groups, kind="output",
                                         expires_at=time.time() + PENDING_OUTPUT_SECONDS)
        for job_id, items in encoded.items():
            if job_id in failed:
                if not isinstance(failed[job_id], Unavailable):
                    with logs.bound(**self._about(rows[job_id])):
                        log.error("storing outputs of %s failed: %s", job_id, failed[job_id])
                outcome[job_id] = failed[job_id]
                continue
            outcome[job_id] = [item.record for item in items]
        return outcome

    def _about(self, record: JobRecord) -> dict[str, Any]:
        """The log fields of one job of a claim."""
        return logs.job_fields(record, self.key_prefix(record.owner_id))

    def _batch_about(self, claim: Claim) -> dict[str, Any]:
        prefixes = {record.owner_id: self.key_prefix(record.owner_id) or ""
                    for record in claim.rows}
        return logs.batch_fields(claim.rows, prefixes)

    def _discard(self, outputs: list[dict[str, Any]]) -> None:
        self.files.discard([key for output in outputs for key in output_keys(output)])

    def _announce_text(self, changes: Sequence[Change]) -> None:
        try:
            self.queue.announce(changes)
        except Exception:  # a lost piece of text never fails the job: its answer is stored
            log.exception("publishing a text job's answer so far failed")

    def _store_preview(self, tracker: _ClaimTracker, job_id: str, image: Image.Image) -> None:
        """A live preview as a short-lived JPEG, shown on the job in place of the last one."""
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=80)
        new = NewFile(new_key("image/jpeg", prefix="pre-"), buffer.getvalue(), "image/jpeg",
                      image.width, image.height)
        self.files.save(tracker.owner_of(job_id), new, kind="preview", expires_at=time.time() + PREVIEW_SECONDS)
        replaced = self.queue.set_preview(tracker.claim.token, job_id, new.key)
        if replaced:
            self.files.discard([replaced])


class _PreviewSink:
    """Takes previews from the engine without blocking it: they are stored on a thread of their
    own, and a preview that a newer one of the same job overtakes before it is stored is dropped."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._pending: dict[str, tuple[_ClaimTracker, Image.Image]] = {}
        self._running = False
        self._lock = threading.Lock()
        self._thread: ThreadPoolExecutor | None = None

    def offer(self, tracker: _ClaimTracker, job_id: str, image: Image.Image) -> None:
        with self._lock:
            self._pending[job_id] = (tracker, image)
            if self._running:
                return
            self._running = True
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="previews")
            self._thread.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    return
                job_id, (tracker, image) = self._pending.popitem()
            try:
                self._store(tracker, job_id, image)
            except Unavailable as failure:
                log.warning("a preview of %s was not stored: %s", job_id, failure)
            except Exception:
                log.exception("storing a preview of %s failed", job_id)

    def wait(self, timeout: float = 10.0) -> None:
        """Until every preview offered so far is stored (tests, benches)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    return
            time.sleep(0.01)
