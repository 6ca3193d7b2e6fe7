"""The process's Prometheus metrics: defined here, recorded by the core, exposed by the wiring.

Each process records what happens in it (the jobs it moves, the batches it runs, the webhooks it
sends, the requests it answers) into prometheus_client's default registry; an API process shows
them on `/metrics` (`api/ops.py`), a `roomrender worker` or `roomrender webhooks` process on its
own port (`probes.serve_probes`, next to its /healthz and /readyz). Prometheus scrapes every
process and sums across them. Gauges that describe the shared database (jobs by status, the
webhook backlog) are read from it at scrape time by the API processes only (`api/ops.py`), so
they are never counted once per worker.

Only prometheus_client and the standard library are imported: every layer may record here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# No `_created` series next to every counter and histogram: half the series, nothing lost.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds, from a preview job on a CPU (tens of ms) to a diffusers job queued behind an hour.
_WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
                 3600)
_RUN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
_COUNT_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# -- jobs (recorded by `JobMetricsHook`, in whichever process moves the job) --------------------

JOB_QUEUE_WAIT = Histogram(
    "roomrender_job_queue_wait_seconds",
    "From submission to the job's first start, observed when the job ends",
    ["task", "engine"], buckets=_WAIT_BUCKETS)
JOB_RUN = Histogram(
    "roomrender_job_run_seconds",
    "From the job's first start to its end (succeeded, failed or canceled while running)",
    ["task", "engine"], buckets=_RUN_BUCKETS)
JOB_LATENCY = Histogram(
    "roomrender_job_latency_seconds",
    "End to end: from submission to the job's end, for jobs that ran",
    ["task", "engine"], buckets=_WAIT_BUCKETS)
JOBS_SUBMITTED = Counter(
    "roomrender_jobs_submitted", "Jobs accepted into the queue", ["task", "engine", "dialect"])
JOBS_ENDED = Counter(
    "roomrender_jobs_ended", "Jobs that ended, by outcome (succeeded, failed, canceled)",
    ["task", "engine", "dialect", "outcome"])
JOB_FAILURES = Counter(
    "roomrender_job_failures", "Failed jobs by error code", ["task", "engine", "code"])

# -- workers (recorded by `worker.Worker`) ------------------------------------------------------

BATCH_JOBS = Histogram(
    "roomrender_batch_jobs", "Jobs per batch a worker ran", ["engine"], buckets=_COUNT_BUCKETS)
BATCH_IMAGES = Histogram(
    "roomrender_batch_images", "Images asked for per batch a worker ran", ["engine"],
    buckets=_COUNT_BUCKETS)
BATCH_SECONDS = Histogram(
    "roomrender_batch_seconds", "Time the engine spent on one batch", ["engine"],
    buckets=_RUN_BUCKETS)
WORKER_HEARTBEATS = Counter(
    "roomrender_worker_heartbeats", "Lease heartbeats sent by a worker while it runs a batch",
    ["worker"])
WORKER_LAST_SEEN = Gauge(
    "roomrender_worker_last_seen_timestamp_seconds",
    "When the worker last went round its loop or heartbeat (Unix time)", ["worker"])
JOBS_HANDED_BACK = Counter(
    "roomrender_jobs_handed_back",
    "Running jobs a stopping worker put back in the queue (not counted as an attempt)",
    ["engine"])

# -- webhooks (recorded by `webhooks.delivery.Dispatcher`) --------------------------------------

WEBHOOK_ATTEMPTS = Counter(
    "roomrender_webhook_attempts", "Webhook delivery attempts by outcome (delivered, retry, failed)",
    ["outcome"])
WEBHOOK_DELIVERIES = Counter(
    "roomrender_webhook_deliveries",
    "Webhook messages that reached a final state: delivered, or failed (refused or out of retries)",
    ["outcome"])
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "roomrender_webhook_attempt_seconds", "Duration of one webhook POST", buckets=_HTTP_BUCKETS)

# -- HTTP requests (recorded by `api.telemetry.RequestMetrics`) --------------------------------

HTTP_REQUESTS = Counter(
    "roomrender_http_requests", "HTTP requests by dialect, route template, method and status",
    ["dialect", "route", "method", "status"])
HTTP_SECONDS = Histogram(
    "roomrender_http_request_seconds",
    "Time to the response's headers, by dialect, route template and method",
    ["dialect", "route", "method"], buckets=_HTTP_BUCKETS)
HTTP_IN_PROGRESS = Gauge(
    "roomrender_http_requests_in_progress", "Requests being answered (event streams included)",
    ["dialect"])
KEY_REQUESTS = Counter(
    "roomrender_key_requests", "HTTP requests by API key (its public prefix), dialect and status class",
    ["key", "dialect", "status_class"])
KEY_SECONDS = Histogram(
    "roomrender_key_request_seconds", "Time to the response's headers, by API key prefix and dialect",
    ["key", "dialect"], buckets=_HTTP_BUCKETS)


# -- recording ----------------------------------------------------------------------------------

_ENDS = {"job.succeeded": "succeeded", "job.failed": "failed", "job.canceled": "canceled"}


class JobFacts(Protocol):
    """What the job metrics read of a job (a `jobs.records.JobRecord`: a protocol, as this
    module imports nothing of roomrender)."""

    @property
    def task(self) -> str: ...
    @property
    def engine(self) -> str: ...
    @property
    def dialect(self) -> str: ...
    @property
    def cost(self) -> int: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def created_at(self) -> float: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def finished_at(self) -> float | None: ...


class JobMetricsHook:
    """A `JobQueue` hook: counts submissions and ends, and observes a job's wait, run and latency
    from its row when it ends. It runs in the transaction of the change, so the process that moved
    the job records it, once (a commit that fails after it ran, the database going away at that
    moment, would be counted all the same)."""

    def __call__(self, connection: Any, job: JobFacts, event: str) -> None:
        if event == "job.queued":
            JOBS_SUBMITTED.labels(job.task, job.engine, job.dialect).inc()
            return
        outcome = _ENDS.get(event)
        if outcome is None:
            return
        JOBS_ENDED.labels(job.task, job.engine, job.dialect, outcome).inc()
        if outcome == "failed":
            JOB_FAILURES.labels(job.task, job.engine, job.error_code or "unknown").inc()
        if job.started_at is None or job.finished_at is None:
            return  # canceled while queued: it never ran
        JOB_QUEUE_WAIT.labels(job.task, job.engine).observe(max(0.0, job.started_at - job.created_at))
        JOB_RUN.labels(job.task, job.engine).observe(max(0.0, job.finished_at - job.started_at))
        JOB_LATENCY.labels(job.task, job.engine).observe(max(0.0, job.finished_at - job.created_at))


def worker_seen(worker_id: str, heartbeat: bool = False) -> None:
    WORKER_LAST_SEEN.labels(worker_id).set(time.time())
    beats = WORKER_HEARTBEATS.labels(worker_id)  # listed at 0 before the first heartbeat
    if heartbeat:
        beats.inc()


def batch_ran(engine: str, jobs: Sequence[JobFacts], seconds: float) -> None:
    """A batch of these claimed jobs went through the engine in `seconds`."""
    BATCH_JOBS.labels(engine).observe(len(jobs))
    BATCH_IMAGES.labels(engine).observe(sum(job.cost for job in jobs))
    BATCH_SECONDS.labels(engine).observe(seconds)


# -- GPU memory ---------------------------------------------------------------------------------

class GpuMemoryCollector(Collector):
    """GPU memory of this process, per visible CUDA device, read at scrape time.

    Reported only when this process has already imported torch and initialised CUDA (a GPU worker
    running the diffusers engine): the collector never imports torch, and never creates a CUDA
    context in a process that did not use the GPU. The families are always listed, empty
    otherwise, so dashboards and checks find the names everywhere."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            "allocated": GaugeMetricFamily(
                "roomrender_gpu_memory_allocated_bytes",
                "GPU memory held by live tensors of this process (torch.cuda.memory_allocated)",
                labels=["device"]),
            "peak": GaugeMetricFamily(
                "roomrender_gpu_memory_peak_bytes",
                "Most GPU memory this process's tensors held at once since it started "
                "(torch.cuda.max_memory_allocated)", labels=["device"]),
            "reserved": GaugeMetricFamily(
                "roomrender_gpu_memory_reserved_bytes",
                "GPU memory held by this process's caching allocator (torch.cuda.memory_reserved)",
                labels=["device"]),
            "used": GaugeMetricFamily(
                "roomrender_gpu_memory_used_bytes",
                "GPU memory in use on the device by every process (total minus free)",
                labels=["device"]),
            "total": GaugeMetricFamily(
                "roomrender_gpu_memory_total_bytes", "GPU memory of the device", labels=["device"]),
        }
        for device, values in gpu_memory().items():
            for name, value in values.items():
                families[name].add_metric([device], value)
        yield from families.values()


def gpu_memory() -> dict[str, dict[str, float]]:
    """{device index: {allocated, peak, reserved, used, total}} in bytes; {} without a GPU in use."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    try:
        cuda = torch.cuda
        if not (cuda.is_available() and cuda.is_initialized()):
            return {}
        found: dict[str, dict[str, float]] = {}
        for index in range(cuda.device_count()):
            free, total = cuda.mem_get_info(index)
            found[str(index)] = {
                "allocated": float(cuda.memory_allocated(index)),
                "peak": float(cuda.max_memory_allocated(index)),
                "reserved": float(cuda.memory_reserved(index)),
                "used": float(total - free),
                "total": float(total),
            }
        return found
    except Exception:  # a scrape must never fail because a device went away
        return {}


REGISTRY.register(GpuMemoryCollector())

