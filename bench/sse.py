"""SSE at scale: N concurrent watchers on one API process over jobs that a worker runs.

For each N (default 100, 1,000 and 5,000, one fresh server each, all in one run):

1. `roomrender serve` on a fresh database. SQLite: with its in-process worker (the embedded
   default). PostgreSQL: `--workers 0` and a `roomrender worker` process beside it, so every
   change reaches the API process through LISTEN/NOTIFY. A gate job holds the worker
   (bench/sse_engine.py blocks on a FIFO: no CPU) while J jobs queue behind it.
2. Without watchers: the server's idle CPU and RSS, and `GET /v1/jobs/{id}` (a queued job: its
   row and its queue position) at R requests/s, open loop from another process (latency counted
   from when each request was due, so a stall is not hidden).
3. N watchers open `GET /v1/jobs/{id}/events`, round-robin over the J jobs (raw asyncio streams
   in this process): RSS again (memory per stream), the server's CPU over an idle window
   (16 s: one keep-alive per stream falls in it), the same GET load again.
4. The gate opens; the worker runs the J jobs (JOB_MS each, one per claim). Each watcher records
   when each event arrives. Delays: `running` from the job's started_at, `succeeded` from its
   finished_at (both stamped just before the transition's commit), a queue-position move from
   the started_at of the job whose leaving the queue gave that position. Every watcher must see
   queued -> running -> succeeded.

    .venv/bin/python bench/sse.py [--watchers 100,1000,5000] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http1 import exchange  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime, all threads


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def full_collections(server: Server) -> int:
    """The server's full garbage collections so far (its /metrics): each stops the process for
    a time that grows with the objects it holds (every open stream's among them)."""
    text = httpx.get(f"{server.base}/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith('python_gc_collections_total{generation="2"}'):
            return int(float(line.split()[-1]))
    return -1


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Server:
    base: str
    port: int
    key: str
    pid: int
    gate: Path


@contextlib.contextmanager
def database(url: str) -> Iterator[str]:
    if not url:
        yield ""
        return
    from tests.databases import fresh_schema

    with fresh_schema(url) as isolated:
        yield isolated


@contextlib.contextmanager
def running_server(database_url: str, job_ms: float) -> Iterator[Server]:
    data_dir = Path(tempfile.mkdtemp(prefix="rr-bench-sse-"))
    gate = data_dir / "gate"
    os.mkfifo(gate)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ROOMRENDER_DATA_DIR": str(data_dir), "ROOMRENDER_PUBLIC_BASE_URL": base,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "ROOMRENDER_ENGINE": "bench.sse_engine:factory", "SSE_BENCH_GATE": str(gate),
           "SSE_BENCH_JOB_MS": str(job_ms), "ROOMRENDER_BATCH_MAX_IMAGES": "1",
           "ROOMRENDER_BATCH_WAIT_MS": "0",
           # One key holds every stream here; a server caps a key at 16 by default.
           "ROOMRENDER_MAX_EVENT_STREAMS_PER_KEY": "1000000"}
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    with database(database_url) as url:
        if url:
            env["ROOMRENDER_DATABASE_URL"] = url
        try:
            log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
            logs.append(log)
            server = subprocess.Popen(
                [sys.executable, "-m", "roomrender.cli", "serve", "--port", str(port),
                 "--log-level", "warning", "--workers", "0" if url else "1"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            processes.append(server)
            key = ""
            deadline = time.time() + 60
            while not key:
                assert time.time() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.1)
                key = next((line.strip() for line in (data_dir / "server.log").read_text()
                            .splitlines() if line.startswith("rr_")), "")
            while True:
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            if url:  # the worker in a process of its own: changes reach the API by NOTIFY
                worker_log = open(data_dir / "worker.log", "wb")  # noqa: SIM115
                logs.append(worker_log)
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "roomrender.cli", "worker"], cwd=ROOT, env=env,
                    stdout=worker_log, stderr=subprocess.STDOUT))
            yield Server(base, port, key, server.pid, gate)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
            for log in logs:
                log.close()
            shutil.rmtree(data_dir, ignore_errors=True)


def open_gate(gate: Path) -> None:
    with open(gate, "w") as fifo:
        fifo.write("go\n")


def tiny_photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 160, 140)).save(buffer, format="JPEG")
    return buffer.getvalue()


def queue_jobs(server: Server, jobs: int) -> list[str]:
    """The gate job (running, holding the worker), then `jobs` queued behind it, in order."""
    with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {server.key}"},
                      timeout=30) as client:
        image = client.post("/v1/uploads", files={"file": ("room.jpg", tiny_photo())}).json()["id"]

        def submit(seed: int) -> str:
            answer = client.post("/v1/jobs", json={"task": "restyle", "image": image,
                                                   "style": "modern", "seed": seed})
            assert answer.status_code == 202, answer.text
            return str(answer.json()["id"])

        gate = submit(0)
        deadline = time.time() + 30
        while client.get(f"/v1/jobs/{gate}").json()["status"] != "running":
            assert time.time() < deadline, "the worker never took the gate job"
            time.sleep(0.05)
        return [submit(seed) for seed in range(1, jobs + 1)]


def job_times(server: Server, ids: list[str]) -> dict[str, tuple[float, float]]:
    """(started_at, finished_at) of each job, as epoch seconds."""
    def epoch(value: str) -> float:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

    times = {}
    with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {server.key}"},
                      timeout=30) as client:
        for job_id in ids:
            job = client.get(f"/v1/jobs/{job_id}").json()
            times[job_id] = (epoch(job["started_at"]), epoch(job["finished_at"]))
    return times


# -- ordinary GETs at a fixed rate, from another process ----------------------------------


def _get_load(port: int, path: str, key: str, rate: float, seconds: float, connections: int,
              results: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Authorization: Bearer {key}\r\n\r\n").encode()
    latencies: list[float] = []
    errors = [0]

    async def connection(index: int, start: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        due = start + index / rate
        try:
            while due < start + seconds:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                status = await exchange(reader, writer, request)
                latencies.append(time.perf_counter() - due)  # from when it was due
                if b" 200 " not in status:
                    errors[0] += 1
                due += connections / rate
        finally:
            writer.close()

    async def main() -> None:
        start = time.perf_counter() + 0.2
        await asyncio.gather(*(connection(index, start) for index in range(connections)))

    asyncio.run(main())
    results.put({"latencies": latencies, "errors": errors[0]})


def get_latency(server: Server, path: str, rate: float, seconds: float) -> dict[str, float]:
    # Spawned, not forked: this process holds thousands of open streams and a running loop.
    spawn = multiprocessing.get_context("spawn")
    results: Any = spawn.Queue()
    process = spawn.Process(target=_get_load, args=(
        server.port, path, server.key, rate, seconds, 25, results))
    process.start()
    measured = results.get(timeout=seconds + 120)
    process.join()
    latencies = sorted(measured["latencies"])
    return {"requests": len(latencies), "errors": measured["errors"],
            "rate": len(latencies) / seconds, **percentiles(latencies, scale=1000)}


def get_windows(server: Server, path: str, rate: float, seconds: float,
                windows: int) -> dict[str, Any]:
    """The GET load in `windows` windows of `seconds`; the median window's percentiles (the
    machine is shared: one window hit by someone else's burst does not decide the figure)."""
    measured = [get_latency(server, path, rate, seconds) for _ in range(windows)]
    summary: dict[str, Any] = {name: statistics.median(window[name] for window in measured)
                               for name in ("p50", "p95", "p99", "rate")}
    summary["windows_p95"] = [round(window["p95"], 2) for window in measured]
    summary["errors"] = sum(window["errors"] for window in measured)
    return summary


def percentiles(values: list[float], scale: float = 1.0) -> dict[str, float]:
    if len(values) < 2:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"),
                "max": values[0] * scale if values else float("nan")}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49] * scale, "p95": cuts[94] * scale, "p99": cuts[98] * scale,
            "max": max(values) * scale}


# -- the watchers -------------------------------------------------------------------------


@dataclass
class Watcher:
    index: int
    job_index: int
    job_id: str
    # (arrival, status, queue position, progress) of each status event
    events: list[tuple[float, str, int | None, int]] = field(default_factory=list)
    keepalives: int = 0
    ended: bool = False
    first: asyncio.Future[None] | None = None


def _field(data: bytes, name: bytes) -> bytes:
    """A scalar field of the job's JSON, found without parsing all of it."""
    at = data.index(b'"' + name + b'":') + len(name) + 3
    end = at
    while data[end] not in b",}":
        end += 1
    return data[at:end]


class WatchProtocol(asyncio.Protocol):
    """One job's stream, parsed as it arrives (chunked transfer, whole events per chunk): no
    coroutine and no JSON parse per event, so that the watchers' process lags the server as
    little as possible."""

    def __init__(self, watcher: Watcher, request: bytes, done: asyncio.Future[None]) -> None:
        self.watcher = watcher
        self.request = request
        self.done = done
        self.raw = b""
        self.events = b""
        self.headers_done = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        self.raw += data
        if not self.headers_done:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 200 " not in self.raw[:self.raw.find(b"\r\n")]:
                self._finish(RuntimeError(f"stream refused: {self.raw[:60]!r}"))
                return
            self.raw, self.headers_done = self.raw[end + 4:], True
        while True:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.raw[:line_end], 16)
            if size == 0:
                self._finish(None)
                return
            if len(self.raw) < line_end + size + 4:
                return
            self.events += self.raw[line_end + 2:line_end + 2 + size]
            self.raw = self.raw[line_end + size + 4:]
            self._parse(arrived)

    def _parse(self, arrived: float) -> None:
        watcher = self.watcher
        while True:
            end = self.events.find(b"\n\n")
            if end < 0:
                return
            raw, self.events = self.events[:end], self.events[end + 2:]
            if raw.startswith(b":"):
                watcher.keepalives += 1
                continue
            name, _, data = raw.partition(b"\ndata: ")
            if name == b"event: status":
                position = _field(data, b"queue_position")
                watcher.events.append((arrived, _field(data, b"status").strip(b'"').decode(),
                                       None if position == b"null" else int(position),
                                       int(_field(data, b"progress"))))
                if watcher.first is not None and not watcher.first.done():
                    watcher.first.set_result(None)
            elif name == b"event: end":
                watcher.ended = True

    def _finish(self, error: Exception | None) -> None:
        if not self.done.done():
            if error is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._finish(exc or (None if self.watcher.ended else RuntimeError("stream cut")))
        if self.watcher.first is not None and not self.watcher.first.done():
            self.watcher.first.set_exception(RuntimeError("stream ended before its first event"))


async def open_watchers(watchers: list[Watcher], port: int, key: str,
                        at_once: int = 200) -> list[asyncio.Future[None]]:
    """Open every stream (at most `at_once` handshakes in flight) until its first event; the
    futures that end with the streams."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(at_once)
    ends: list[asyncio.Future[None]] = []
    for watcher in watchers:
        await slots.acquire()
        watcher.first = loop.create_future()
        watcher.first.add_done_callback(lambda _: slots.release())
        done: asyncio.Future[None] = loop.create_future()
        request = (f"GET /v1/jobs/{watcher.job_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Authorization: Bearer {key}\r\n\r\n").encode()
        await loop.create_connection(lambda w=watcher, r=request, d=done: WatchProtocol(w, r, d),
                                     "127.0.0.1", port)
        ends.append(done)
    await asyncio.gather(*(w.first for w in watchers if w.first is not None))
    return ends


# -- one N --------------------------------------------------------------------------------


def run_one(n: int, args: argparse.Namespace) -> dict[str, Any]:
    with running_server(args.database_url, args.job_ms) as server:
        ids = queue_jobs(server, args.jobs)
        time.sleep(1.0)
        poll_path = f"/v1/jobs/{ids[len(ids) // 2]}"
        cpu = cpu_seconds(server.pid)
        time.sleep(args.baseline_idle_seconds)
        idle_without = (cpu_seconds(server.pid) - cpu) / args.baseline_idle_seconds
        rss_without = rss_bytes(server.pid)
        get_latency(server, poll_path, args.rate, 1.0)  # warm-up
        get_without = get_windows(server, poll_path, args.rate, args.get_seconds, args.get_windows)
        result = asyncio.run(watch_phase(n, args, server, ids, poll_path))
        times = job_times(server, ids)
    result.update(n=n, idle_cpu_without=idle_without, rss_without_mb=rss_without / 2**20,
                  get_without=get_without)
    result.update(delays(result.pop("watchers"), ids, times))
    return result


async def watch_phase(n: int, args: argparse.Namespace, server: Server, ids: list[str],
                      poll_path: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    watchers = [Watcher(index, index % len(ids), ids[index % len(ids)]) for index in range(n)]
    rss_before = rss_bytes(server.pid)
    opened_at = time.perf_counter()
    ends = await open_watchers(watchers, server.port, server.key)
    open_seconds = time.perf_counter() - opened_at
    await asyncio.sleep(1.0)
    rss_with = rss_bytes(server.pid)
    gcs = [await loop.run_in_executor(None, full_collections, server)]
    cpu = cpu_seconds(server.pid)
    keepalives = sum(w.keepalives for w in watchers)
    await asyncio.sleep(args.idle_seconds)
    idle_with = (cpu_seconds(server.pid) - cpu) / args.idle_seconds
    keepalives = sum(w.keepalives for w in watchers) - keepalives
    gcs.append(await loop.run_in_executor(None, full_collections, server))
    get_with = await loop.run_in_executor(None, get_windows, server, poll_path, args.rate,
                                          args.get_seconds, args.get_windows)
    gcs.append(await loop.run_in_executor(None, full_collections, server))
    cpu = cpu_seconds(server.pid)
    started = time.perf_counter()
    await loop.run_in_executor(None, open_gate, server.gate)
    await asyncio.wait_for(asyncio.gather(*ends), timeout=args.jobs * args.job_ms / 1000 * 20 + 120)
    active_seconds = time.perf_counter() - started
    active_cpu = cpu_seconds(server.pid) - cpu
    gcs.append(await loop.run_in_executor(None, full_collections, server))
    return {"watchers": watchers, "open_seconds": open_seconds,
            "memory_per_stream_kb": (rss_with - rss_before) / n / 1024,
            "rss_with_mb": rss_with / 2**20, "idle_cpu_with": idle_with,
            "keepalives_in_idle_window": keepalives, "get_with": get_with,
            "active_seconds": active_seconds, "active_cpu_seconds": active_cpu,
            # full collections during the idle window, the GET windows, the active phase
            "full_gcs": [after - before for before, after in zip(gcs, gcs[1:], strict=False)]}


def delays(watchers: list[Watcher], ids: list[str],
           times: dict[str, tuple[float, float]]) -> dict[str, Any]:
    status_delays: list[float] = []
    position_delays: list[float] = []
    missed, events, progress_events = 0, 0, 0
    for watcher in watchers:
        started, finished = times[watcher.job_id]
        seen: list[str] = []
        last_position: int | None = None
        for arrived, status, position, progress in watcher.events:
            events += 1
            if not seen or seen[-1] != status:
                seen.append(status)
                if status == "running":
                    status_delays.append(arrived - started)
                elif status == "succeeded":
                    status_delays.append(arrived - finished)
            elif status == "running" and 0 < progress < 100:
                progress_events += 1
            if status == "queued" and position is not None:
                if last_position is not None and position < last_position:
                    # The job at index (own index - position) leaving the queue made it so.
                    cause = ids[watcher.job_index - position]
                    position_delays.append(arrived - times[cause][0])
                last_position = position
        if seen != ["queued", "running", "succeeded"] or not watcher.ended:
            missed += 1
    return {"events": events, "progress_events": progress_events, "missed": missed,
            "status_delay_ms": percentiles(sorted(status_delays), 1000),
            "status_events": len(status_delays),
            "position_delay_ms": percentiles(sorted(position_delays), 1000),
            "position_events": len(position_delays)}


# -- report -------------------------------------------------------------------------------


def report(results: list[dict[str, Any]], args: argparse.Namespace, loads: list[str]) -> None:
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{platform.python_implementation()} {platform.python_version()}")
    backend = "PostgreSQL (worker process, NOTIFY)" if args.database_url else \
        "SQLite (in-process worker)"
    print(f"machine: {machine}; database: {backend}; load average before/after: "
          f"{loads[0]} / {loads[-1]}")
    print(f"{args.jobs} jobs of {args.job_ms:g} ms behind a gate; GET at {args.rate:g}/s in "
          f"{args.get_windows} windows of {args.get_seconds:g} s (median window); idle window "
          f"{args.idle_seconds:g} s")
    header = (f"{'watchers':>8} {'open s':>7} {'KB/stream':>9} {'idle CPU':>9} {'(none)':>7} "
              f"{'GET p95':>8} {'(none)':>7} {'ratio':>6} {'delay p50':>9} {'p95':>6} {'p99':>6} "
              f"{'max':>6} {'pos p50':>7} {'pos p99':>7} {'missed':>6} {'full GCs':>8}")
    print(header)
    for r in results:
        ratio = r["get_with"]["p95"] / r["get_without"]["p95"]
        d, p = r["status_delay_ms"], r["position_delay_ms"]
        print(f"{r['n']:>8} {r['open_seconds']:>7.1f} {r['memory_per_stream_kb']:>9.1f} "
              f"{r['idle_cpu_with'] * 100:>8.1f}% {r['idle_cpu_without'] * 100:>6.1f}% "
              f"{r['get_with']['p95']:>8.1f} {r['get_without']['p95']:>7.1f} {ratio:>6.2f} "
              f"{d['p50']:>9.1f} {d['p95']:>6.1f} {d['p99']:>6.1f} {d['max']:>6.0f} "
              f"{p['p50']:>7.0f} {p['p99']:>7.0f} {r['missed']:>6} "
              f"{'/'.join(str(n) for n in r['full_gcs']):>8}")
    print("idle CPU: % of one core (with N watchers open, and without); GET p95 in ms with the "
          "watchers open and without; delay: ms from a status change (running, succeeded) to its "
          "event at the watcher; pos: ms from a job leaving the queue to the position move it "
          "caused (a lane recomputes at once with few watchers, at most every 1 s with "
          "5,000: POSITION_MOVES_PER_SECOND); missed: watchers that did not see "
          "queued -> running -> succeeded; full GCs: the server's full garbage collections in "
          "the idle window / the GET windows with watchers / the active phase")
    print(json.dumps({"machine": machine, "database": backend, "load": loads,
                      "results": results}, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", default="100,1000,5000")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--job-ms", type=float, default=40.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--get-seconds", type=float, default=3.0)
    parser.add_argument("--get-windows", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=16.0)
    parser.add_argument("--baseline-idle-seconds", type=float, default=5.0)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))  # ulimit -n 65536
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    loads = [load_average()]
    results = []
    for n in (int(value) for value in args.watchers.split(",")):
        results.append(run_one(n, args))
        loads.append(load_average())
        print(f"N={n} done (load {loads[-1]})", file=sys.stderr, flush=True)
    report(results, args, loads)


if __name__ == "__main__":
    main()
