"""Poll throughput: GET /v1/jobs/{id} against a trivial endpoint of the same app, same run.

Starts `roomrender serve` (one process, SQLite, preview engine, no in-process worker) on a free
port, finishes one job with a `roomrender worker` run beside it, queues a second job that stays
queued, then drives each endpoint with C concurrent keep-alive clients for D seconds from a
separate process and prints requests/s, p50 and p99 latency, and the ratios. The finished job is
the goal's measure; the queued one (whose answer also counts the jobs ahead of it) is shown too.

    .venv/bin/python bench/poll.py [--clients 100] [--seconds 10]

The load generator is a minimal asyncio HTTP/1.1 client (no parsing beyond the status line and
Content-Length) so that it costs the server's CPU as little as possible on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.http1 import exchange  # noqa: E402


async def _client(host: str, port: int, request: bytes, until: float, latencies: list[float],
                  errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            status = await exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status:
                errors.append(1)
    finally:
        writer.close()


def _drive(host: str, port: int, path: str, headers: dict[str, str], clients: int, seconds: float,
           queue: multiprocessing.Queue) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}\r\n".encode()
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> float:
        until = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(_client(host, port, request, until, latencies, errors)
                               for _ in range(clients)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    queue.put({"requests": len(latencies), "errors": len(errors), "seconds": elapsed,
               "latencies": sorted(latencies)})


def measure(port: int, path: str, headers: dict[str, str], clients: int, seconds: float) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=_drive, args=("127.0.0.1", port, path, headers,
                                                           clients, seconds, queue))
    process.start()
    result = queue.get(timeout=seconds + 60)
    process.join()
    latencies = result.pop("latencies")
    result["rps"] = result["requests"] / result["seconds"]
    result["p50_ms"] = statistics.quantiles(latencies, n=100)[49] * 1000
    result["p99_ms"] = statistics.quantiles(latencies, n=100)[98] * 1000
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    from tests.conftest import make_room_photo

    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="roomrender-bench-")
    env = {**os.environ, "ROOMRENDER_DATA_DIR": data_dir,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    server = subprocess.Popen(
        [sys.executable, "-m", "roomrender.cli", "serve", "--port", str(port), "--log-level", "warning",
         "--workers", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        key = ""
        while not key.startswith("rr_"):
            key = server.stdout.readline().strip()
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {key}"}
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        upload = httpx.post(f"{base}/v1/uploads", headers=auth,
                            files={"file": ("room.jpg", make_room_photo(640, 480))}).json()
        body = {"task": "restyle", "image": upload["id"], "style": "modern", "n": 2}
        job = httpx.post(f"{base}/v1/jobs", headers=auth, json=body).json()
        worker = subprocess.Popen([sys.executable, "-m", "roomrender.cli", "worker"], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while httpx.get(f"{base}/v1/jobs/{job['id']}", headers=auth).json()["status"] != "succeeded":
                time.sleep(0.1)
        finally:
            worker.terminate()
            worker.wait(10)
        queued = httpx.post(f"{base}/v1/jobs", headers=auth, json=body).json()
        assert queued["status"] == "queued"

        # Warm both paths, then measure each in turn.
        measure(port, "/healthz", {}, args.clients, 1.0)
        measure(port, f"/v1/jobs/{job['id']}", auth, args.clients, 1.0)
        trivial = measure(port, "/healthz", {}, args.clients, args.seconds)
        poll = measure(port, f"/v1/jobs/{job['id']}", auth, args.clients, args.seconds)
        poll_queued = measure(port, f"/v1/jobs/{queued['id']}", auth, args.clients, args.seconds)
    finally:
        server.terminate()
        server.wait(10)

    machine = (f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{platform.python_implementation()} {platform.python_version()}")
    print(f"machine: {machine}; {args.clients} concurrent clients, {args.seconds:g} s each")
    print(f"{'endpoint':<30}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    rows = (("GET /healthz (trivial)", trivial), ("GET /v1/jobs/{id} (finished)", poll),
            ("GET /v1/jobs/{id} (queued)", poll_queued))
    for name, result in rows:
        print(f"{name:<30}{result['rps']:>10.0f}{result['p50_ms']:>10.1f}{result['p99_ms']:>10.1f}"
              f"{result['errors']:>8}")
    ratio = poll["rps"] / trivial["rps"]
    queued_ratio = poll_queued["rps"] / trivial["rps"]
    print(f"poll / trivial throughput: {ratio:.2f} (goal >= 0.60); queued job: {queued_ratio:.2f}")
    print(json.dumps({"trivial": trivial, "poll": poll, "poll_queued": poll_queued,
                      "ratio": round(ratio, 3), "queued_ratio": round(queued_ratio, 3),
                      "machine": machine}))


if __name__ == "__main__":
    main()
