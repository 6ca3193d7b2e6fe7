"""The dispatcher: claims due outbox rows with a lease, POSTs them signed, records every attempt.

- Several dispatchers (processes) may run on one database: a claim moves the row's
  `next_attempt_at` to the end of a lease under a fresh `claim_token` (FOR UPDATE SKIP LOCKED on
  PostgreSQL, a guarded UPDATE everywhere), and the outcome is only recorded by that claim. A
  dispatcher that dies mid-attempt leaves the row to be tried again when the lease ends: delivery
  is at least once, and every attempt of one event carries the same `webhook-id`.
- Outcomes: 2xx delivered; network errors, timeouts, 429 and 5xx are retried on the schedule
  (`Retry-After` may push an attempt later, never earlier); any other answer, a 3xx included
  (redirects are not followed: a webhook must answer at the URL it was given), and a URL refused
  at delivery time fail at once, since trying again would get the same.
- The URL is checked again before every attempt, and each connection goes to an address checked
  at that moment (`roomrender.safehttp`), over https too (SNI and certificate on the name), so
  the name cannot be re-resolved to a private address in between. An attempt has a total
  deadline (the webhook timeout), not only a timeout per read.
- One delivery's failure, whatever it is, fails that delivery only: the loop goes on.
- Slots are shared fairly across keys (`webhooks.fairness`): a few in flight per key, and keys
  whose receivers keep timing out get one short attempt at a time within half the slots, so a
  good receiver is called at once whatever other keys' receivers do. A finished attempt wakes the
  loop (it rings the doorbell), so a freed slot is taken at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from roomrender import __version__, metrics
from roomrender.canonical.errors import UrlRefused
from roomrender.config import Settings
from roomrender.netsafety import check_url_form
from roomrender.safehttp import deadline, pinned_client
from roomrender.trouble import Trouble
from roomrender.webhooks.fairness import KeyShares
from roomrender.webhooks.outbox import DELIVERED, FAILED, PENDING, AttemptRecord, Outbox
from roomrender.webhooks.signing import SecretStore, SigningSecrets, signed_headers

log = logging.getLogger("roomrender.webhooks")

RETRY, ERROR_SNIPPET_BYTES = "retry", 512
# A `Retry-After` longer than the schedule's longest wait is cut to it.
MAX_RETRY_AFTER_SECONDS = 10 * 3600.0
# A due message that could not be claimed (another dispatcher holds it) is looked at again after
# this, not in a tight loop.
MIN_CLAIM_GAP = 0.05
# Due messages held back by their key's share are claimed again when an attempt ends (it rings),
# else after this.
HELD_BACK_GAP = 0.25


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox row, with the secrets that sign it."""

    id: str
    token: str
    url: str
    payload: str
    attempt: int
    # None when the key that owns the job no longer exists: nothing can sign for it.
    secrets: SigningSecrets | None
    owner_id: str = ""
    # The attempt's deadline (shorter for a key whose receivers keep timing out).
    timeout: float | None = None


@dataclass(frozen=True)
class AttemptResult:
    delivery: Delivery
    started_at: float
    duration_ms: int
    outcome: str
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` header (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _storable(text: str | None) -> str | None:
    """An error message as the database can store it (a URL in it may hold lone surrogates)."""
    return None if text is None else text.encode("utf-8", "replace").decode("utf-8")


def classify(status_code: int) -> str:
    if 200 <= status_code < 300:
        return DELIVERED
    if status_code == 429 or status_code >= 500:
        return RETRY
    return FAILED


class Dispatcher:
    def __init__(self, outbox: Outbox, secrets: SecretStore, settings: Settings, *,
                 schedule: Sequence[float] | None = None,
                 timeout: float | None = None, concurrency: int | None = None,
                 lease_seconds: float | None = None, allow_private: bool | None = None,
                 dispatcher_id: str | None = None, per_key: int | None = None,
                 slow_timeout: float | None = None) -> None:
        self.outbox = outbox
        self.secrets = secrets
        self.schedule = list(settings.webhook_retry_schedule if schedule is None else schedule)
        if not self.schedule:
            raise ValueError("the webhook retry schedule needs at least one entry")
        self.timeout = settings.webhook_timeout_seconds if timeout is None else timeout
        self.concurrency = max(1, settings.webhook_concurrency if concurrency is None else concurrency)
        self.lease_seconds = settings.webhook_lease_seconds if lease_seconds is None else lease_seconds
        self.allow_private = settings.allow_private_urls if allow_private is None else allow_private
        self.poll_seconds = settings.webhook_poll_seconds
        self.shares = KeyShares(
            self.concurrency,
            settings.webhook_concurrency_per_key if per_key is None else per_key,
            self.timeout,
            settings.webhook_slow_timeout_seconds if slow_timeout is None else slow_timeout)
        # Whether the last claim left due messages behind for their keys' shares.
        self._held_back = False
        self.id = dispatcher_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._client = pinned_client(
            allow_private=self.allow_private, timeout=self.timeout,
            ca_file=settings.outbound_ca_file or None, max_connections=self.concurrency,
            headers={"User-Agent": f"roomrender-webhooks/{__version__}",
                     "Content-Type": "application/json"},
        )
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="webhook")
        # Retries after a failure start short: the poll is only a fallback (the feed wakes it).
        self.trouble = Trouble(f"webhook dispatcher {self.id}",
                               base_seconds=min(self.poll_seconds, 0.25), logger=log)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    # -- claiming -------------------------------------------------------------------------

    def claim(self, limit: int, now: float | None = None) -> list[Delivery]:
        """Lease up to `limit` due messages to this dispatcher."""
        token, messages = self.outbox.lease_due(limit, self.lease_seconds, now,
                                                shares=self.shares)
        for message in messages:
            self.shares.started(message.owner_id)
        self._held_back = len(messages) < limit and bool(self.shares.busy_owners())
        if not messages:
            return []
        try:
            secrets = self.secrets.for_owners(sorted({message.owner_id for message in messages}))
        except BaseException:
            for message in messages:
                self.shares.finished(message.owner_id, timed_out=False)
            raise
        return [Delivery(message.id, token, message.url, message.payload, message.attempts + 1,
                         secrets.get(message.owner_id), message.owner_id,
                         self.shares.timeout_for(message.owner_id)) for message in messages]

    # -- attempting -----------------------------------------------------------------------

    def attempt(self, delivery: Delivery) -> AttemptResult:
        """POST one message once; never raises: whatever goes wrong fails this attempt."""
        started = time.time()
        timed_out = False
        try:
            result = self._attempt(delivery, started)
            timed_out = result.outcome == RETRY and (result.error or "").startswith("timed out")
            return result
        except Exception as failed:
            log.warning("webhook %s: %s: %s", delivery.id, type(failed).__name__, failed)
            return AttemptResult(delivery, started, int((time.time() - started) * 1000), FAILED,
                                 error=f"{type(failed).__name__}: {failed}")
        finally:
            if delivery.owner_id:
                self.shares.finished(delivery.owner_id, timed_out=timed_out)

    def _attempt(self, delivery: Delivery, started: float) -> AttemptResult:

        def result(outcome: str, **fields: Any) -> AttemptResult:
            duration = int((time.time() - started) * 1000)
            return AttemptResult(delivery, started, duration, outcome, **fields)

        if delivery.secrets is None:
            return result(FAILED, error="the API key that owns this job no longer exists")
        try:
            # The form here; the addresses when connecting (safehttp), once per connection.
            check_url_form(delivery.url)
        except UrlRefused as refused:
            return result(FAILED, error=f"refused: {refused.message}")
        headers = signed_headers(delivery.secrets, delivery.id, delivery.payload)
        timeout = self.timeout if delivery.timeout is None else delivery.timeout
        try:
            with deadline(timeout), self._client.stream(
                    "POST", delivery.url, content=delivery.payload.encode("utf-8"),
                    headers=headers, timeout=timeout) as response:
                snippet = b""
                for chunk in response.iter_bytes():
                    snippet += chunk
                    if len(snippet) >= ERROR_SNIPPET_BYTES:
                        break
        except UrlRefused as refused:
            return result(FAILED, error=f"refused: {refused.message}")
        except httpx.TimeoutException:
            return result(RETRY, error=f"timed out after {timeout:g} s")
        except httpx.HTTPError as failed:
            return result(RETRY, error=f"{type(failed).__name__}: {failed}")
        except Exception as failed:
            return result(FAILED, error=f"{type(failed).__name__}: {failed}")
        outcome = classify(response.status_code)
        if outcome == DELIVERED:
            return result(DELIVERED, status_code=response.status_code)
        error = f"HTTP {response.status_code}"
        if response.is_redirect:
            error += " (redirects are not followed)"
        text = snippet[:ERROR_SNIPPET_BYTES].decode("utf-8", "replace").strip()
        if text:
            error += f": {text[:200]}"
        return result(outcome, status_code=response.status_code, error=error,
                      retry_after=retry_after_seconds(response.headers.get("retry-after")))

    # -- recording ------------------------------------------------------------------------

    def _next_attempt(self, result: AttemptResult, now: float) -> tuple[str, float | None, str | None]:
        """(status, next_attempt_at, error) after this attempt."""
        if result.outcome != RETRY:
            return result.outcome, None, result.error
        attempt = result.delivery.attempt
        if attempt >= len(self.schedule):
            return FAILED, None, f"gave up after {attempt} attempts; last: {result.error}"
        delay = self.schedule[attempt]
        if result.retry_after is not None:
            delay = max(delay, min(result.retry_after, MAX_RETRY_AFTER_SECONDS))
        return PENDING, now + delay, result.error

    def record(self, results: Sequence[AttemptResult]) -> None:
        now = time.time()
        records = []
        for r in results:
            status, next_at, error = self._next_attempt(r, now)
            records.append(AttemptRecord(
                message_id=r.delivery.id, token=r.delivery.token, attempt=r.delivery.attempt,
                started_at=r.started_at, duration_ms=r.duration_ms, outcome=r.outcome,
                status_code=r.status_code, error=_storable(r.error), status=status,
                next_attempt_at=next_at, last_error=_storable(error)))
        self.outbox.record(records, now)
        for record in records:
            metrics.WEBHOOK_ATTEMPTS.labels(record.outcome).inc()
            metrics.WEBHOOK_ATTEMPT_SECONDS.observe(record.duration_ms / 1000)
            if record.status != PENDING:
                metrics.WEBHOOK_DELIVERIES.labels(record.status).inc()

    # -- loops ----------------------------------------------------------------------------

    def run_once(self, limit: int = 1000) -> int:
        """Attempt every message due now (up to `limit`) once; the number attempted."""
        deliveries = self.claim(limit)
        results = list(self._pool.map(self.attempt, deliveries))
        self.record(results)
        return len(results)

    def run(self, stop: threading.Event) -> None:
        """Keep up to `concurrency` attempts in flight (shared fairly across keys) until `stop`
        is set. It sleeps until a message is added (the outbox's doorbell), an attempt ends (it
        rings too), the next message is due, or `poll_seconds`."""
        log.info("webhook dispatcher %s started", self.id)
        bell = self.outbox.doorbell()
        bell.ring_when_set(stop)
        in_flight: set[Future[AttemptResult]] = set()
        next_claim, rung = 0.0, True
        try:
            while not stop.is_set():
                rung = bell.take() or rung
                done = {future for future in in_flight if future.done()}
                if done:
                    in_flight -= done
                    self._record_safely([future.result() for future in done])
                free = self.concurrency - len(in_flight)
                if free > 0 and (rung or time.monotonic() >= next_claim):
                    rung = False
                    try:
                        claimed = self.claim(free)
                        self.trouble.cleared()
                    except Exception as failure:
                        self.trouble.failed(failure)  # logged once, retried less and less often
                        claimed = []
                    for delivery in claimed:
                        future = self._pool.submit(self.attempt, delivery)
                        future.add_done_callback(bell.ring)
                        in_flight.add(future)
                    if len(claimed) < free:
                        next_claim = self._next_claim()
                # Every slot busy: an attempt's end rings; else the next claim's time.
                until = self.poll_seconds if len(in_flight) >= self.concurrency else min(
                    self.poll_seconds, next_claim - time.monotonic())
                rung = bell.wait(max(0.0, until))
        finally:
            bell.close()
        done, _ = wait(in_flight)
        self._record_safely([future.result() for future in done])
        log.info("webhook dispatcher %s stopped", self.id)

    def _next_claim(self) -> float:
        """The monotonic time of the next claim once every due message was claimed: when the
        next one is due, `poll_seconds` at the latest (in trouble: the trouble's delay)."""
        if self._held_back and not self.trouble.failing:
            return time.monotonic() + min(self.poll_seconds, HELD_BACK_GAP)
        if not self.trouble.failing:
            try:
                due = self.outbox.next_attempt_at()
            except Exception as failure:
                self.trouble.failed(failure)
            else:
                return time.monotonic() + (self.poll_seconds if due is None else min(
                    self.poll_seconds, max(MIN_CLAIM_GAP, due - time.time())))
        return time.monotonic() + self.trouble.delay()

    def _record_safely(self, results: list[AttemptResult]) -> None:
        try:
            self.record(results)
        except Exception:
            log.exception("recording %d webhook attempts failed", len(results))
