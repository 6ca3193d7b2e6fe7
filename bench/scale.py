"""Queue scale-out benchmark: jobs/s for 1, 2, 4 and 8 `roomrender worker` processes on PostgreSQL.

The engine is tests.fakes_scale's fake: a fixed, sleep-based cost per image (50 ms by default)
and 8x8 outputs, so the CPU left for the queue (claims, leases, heartbeats, output rows, state
transitions) is what limits scaling: this measures the queue's overhead, not rendering.

    .venv/bin/python bench/scale.py                       # 1,2,4,8 workers, batch size 1
    .venv/bin/python bench/scale.py --workers 1,8 --batch 8 --jobs-per-worker 120

Each run gets a fresh schema in the database (dropped afterwards), jobs are queued in bulk once
every worker is polling, and the rate is jobs / (last finished_at - first started_at).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.databases import fresh_schema  # noqa: E402
from tests.fakes_scale import bulk_enqueue  # noqa: E402

from roomrender.canonical.models import GenerationRequest  # noqa: E402
from roomrender.config import Settings  # noqa: E402
from roomrender.db.tables import jobs  # noqa: E402
from roomrender.services import build_services  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU ticks of the whole machine, every process included."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def run(url: str, workers: int, jobs_count: int, seconds_per_image: float, batch: int) -> dict[str, float]:
    with fresh_schema(url) as isolated, tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_url=isolated,
                            engine="tests.fakes_scale:factory")
        services = build_services(settings)
        owner, _ = services.keys.create("bench")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ROOMRENDER_DATABASE_URL": isolated,
               "ROOMRENDER_DATA_DIR": data_dir, "ROOMRENDER_ENGINE": "tests.fakes_scale:factory",
               "ROOMRENDER_FAKE_SECONDS_PER_IMAGE": str(seconds_per_image),
               "ROOMRENDER_BATCH_MAX_IMAGES": str(batch), "ROOMRENDER_WORKER_POLL_SECONDS": "0.05"}
        logs = [Path(data_dir) / f"worker{index}.log" for index in range(workers)]
        processes = [
            subprocess.Popen([sys.executable, "-c", "from roomrender.cli import app; app()", "worker"],
                             cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
            for log in logs
        ]
        try:
            deadline = time.time() + 60
            while not all("serving" in log.read_text() for log in logs):
                if time.time() > deadline:
                    raise RuntimeError("workers did not start")
                time.sleep(0.1)
            time.sleep(0.5)  # every worker is in its poll loop
            cpu_before = sum(cpu_seconds(process.pid) for process in processes)
            busy_before = machine_busy()
            bulk_enqueue(services, owner.id, GenerationRequest(task="text_to_image", prompt="bench"),
                         jobs_count)
            while True:
                with services.db.connect() as connection:
                    left, first, last = connection.execute(select(
                        func.count().filter(jobs.c.status.in_(["queued", "running"])),
                        func.min(jobs.c.started_at), func.max(jobs.c.finished_at))).one()
                if not left:
                    break
                if time.time() > deadline + 600:
                    raise RuntimeError("the jobs did not finish")
                time.sleep(0.1)
            worker_cpu = sum(cpu_seconds(process.pid) for process in processes) - cpu_before
            busy_after = machine_busy()
            with services.db.connect() as connection:
                statuses = dict(connection.execute(
                    select(jobs.c.status, func.count()).group_by(jobs.c.status)).all())
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)
            services.db.dispose()
    if statuses != {"succeeded": jobs_count}:
        raise RuntimeError(f"not every job succeeded: {statuses}")
    elapsed = last - first
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    return {"workers": workers, "jobs": jobs_count, "seconds": elapsed,
            "jobs_per_second": jobs_count / elapsed,
            "worker_cpu_ms_per_job": 1000 * worker_cpu / jobs_count, "machine_busy": busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("ROOMRENDER_BENCH_DATABASE_URL",
                                                                 DEFAULT_URL))
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--jobs-per-worker", type=int, default=150)
    parser.add_argument("--seconds-per-image", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=1, help="batch_max_images of the workers")
    args = parser.parse_args()

    print(f"# {args.seconds_per_image * 1000:.0f} ms per image (sleep), batch size {args.batch}, "
          f"load average before: {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    print("| workers | jobs | seconds | jobs/s | speed-up | efficiency | worker CPU/job | machine CPU busy |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    base: float | None = None
    for workers in [int(w) for w in args.workers.split(",")]:
        result = run(args.database_url, workers, args.jobs_per_worker * workers,
                     args.seconds_per_image, args.batch)
        base = base or result["jobs_per_second"] / workers
        speedup = result["jobs_per_second"] / base
        print(f"| {workers} | {result['jobs']} | {result['seconds']:.2f} | "
              f"{result['jobs_per_second']:.1f} | {speedup:.2f}x | {speedup / workers:.0%} | "
              f"{result['worker_cpu_ms_per_job']:.1f} ms | {result['machine_busy']:.0%} |",
              flush=True)
    ideal = args.batch / (args.seconds_per_image * args.batch) if args.seconds_per_image else None
    if ideal:
        print(f"\nOne worker with no queue overhead would do {ideal:.1f} jobs/s.")
    zero = run(args.database_url, 1, args.jobs_per_worker * 2, 0.0, args.batch)
    print(f"Queue overhead per job (1 worker, zero-cost engine, batch {args.batch}): "
          f"{1000 / zero['jobs_per_second']:.1f} ms wall ({zero['jobs_per_second']:.0f} jobs/s), "
          f"{zero['worker_cpu_ms_per_job']:.1f} ms CPU in the worker; "
          f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
