"""Webhook deliveries per second to a local receiver, with nothing lost or doubled.

    .venv/bin/python bench/webhooks.py [--jobs 1000] [--concurrency 16] [--dispatchers 1]
                                       [--flaky 0.1] [--mode backlog|live] [--database-url URL]
                                       [--flood 64]

`backlog`: the jobs all finish first, then the dispatcher starts; the figure is deliveries per
second draining that backlog. `live`: the dispatcher runs while a worker finishes the jobs; the
figures are the delay from a job's end to its webhook's receipt.

The receiver runs in its own process (so it does not share the dispatcher's GIL), verifies every
signature with the `standardwebhooks` library and counts calls by `webhook-id`. `--flaky F`
answers 500 to the first call of a fraction F of the events, to exercise retries.

`--flood N` (with `--mode live`): another key submits N jobs first, whose webhook URL accepts
connections and never answers; the figures are the good key's delays, which must stay under 2 s
(p99) whatever the flooding key's receivers do (the shipped 10 s attempt deadline).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import multiprocessing
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import func, select

from roomrender.canonical.models import GenerationRequest
from roomrender.config import Settings
from roomrender.db.tables import jobs, webhook_messages
from roomrender.services import build_services


def receive(port_out: Any, secret: str, flaky: float) -> None:
    """The receiver process: verify, count, answer 200 (or 500 once for the flaky share)."""
    from standardwebhooks.webhooks import Webhook

    webhook = Webhook(secret)
    lock = threading.Lock()
    calls: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    received_at: dict[str, float] = {}
    bad = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                webhook.verify(body, headers, json_parse=False)
            except Exception:
                with lock:
                    bad[0] += 1
                self._answer(401)
                return
            message_id = headers["webhook-id"]
            with lock:
                calls[message_id] += 1
                first = calls[message_id] == 1
                fail = first and (zlib.crc32(message_id.encode()) % 1000) < flaky * 1000
                if not fail:
                    accepted[message_id] += 1
                    received_at.setdefault(message_id, time.time())
            self._answer(500 if fail else 200)

        def do_GET(self) -> None:
            with lock:
                stats = {"calls": sum(calls.values()), "accepted": dict(accepted),
                         "bad_signatures": bad[0], "received_at": received_at}
            data = json.dumps(stats).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


def tiny_photo() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 160, 140)).save(buffer, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--dispatchers", type=int, default=1)
    parser.add_argument("--flaky", type=float, default=0.0)
    parser.add_argument("--mode", choices=["backlog", "live"], default="backlog")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--flood", type=int, default=0,
                        help="jobs of another key whose webhook receiver never answers")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="rr-bench-webhooks-"))
    settings = Settings(data_dir=data_dir, database_url=args.database_url,
                        public_base_url="http://bench.invalid", allow_private_urls=True,
                        webhook_retry_schedule=[0, 0.2, 0.2, 0.2, 0.2],
                        webhook_concurrency=args.concurrency, webhook_poll_seconds=0.05)
    services = build_services(settings)
    owner, _ = services.keys.create("bench")
    secret = services.webhook_secrets.get(owner.id).current

    ports: Any = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=receive, args=(ports, secret, args.flaky), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}/hook?bench=1"

    photo = tiny_photo()
    silent = socket.create_server(("127.0.0.1", 0), backlog=1024)
    held: list[socket.socket] = []

    def hold() -> None:
        while True:
            try:
                held.append(silent.accept()[0])
            except OSError:
                return

    threading.Thread(target=hold, daemon=True).start()
    if args.flood:
        flooder, _ = services.keys.create("flooder")
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}/never"
        for _ in range(args.flood):
            services.jobs.submit(flooder, GenerationRequest(
                task="restyle", image=photo, style="modern", webhook=silent_url))
    started = time.perf_counter()
    for _ in range(args.jobs):
        services.jobs.submit(owner, GenerationRequest(task="restyle", image=photo, style="modern",
                                                      webhook=url))
    submitted = time.perf_counter() - started

    stop = threading.Event()
    dispatchers = [services.new_dispatcher() for _ in range(args.dispatchers)]
    threads = [threading.Thread(target=d.run, args=(stop,)) for d in dispatchers]

    def finish_jobs() -> float:
        begun = time.perf_counter()
        worker = services.new_worker()
        while worker.run_once():
            pass
        return time.perf_counter() - begun

    if args.mode == "backlog":
        finishing = finish_jobs()
        began, cpu_began = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.start()
    else:
        began, cpu_began = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.start()
        finishing = finish_jobs()

    def settled() -> bool:
        with services.db.connect() as connection:
            mine = webhook_messages.c.owner_id == owner.id
            open_ = connection.execute(select(func.count()).select_from(webhook_messages).where(
                mine, webhook_messages.c.status == "pending")).scalar_one()
            total = connection.execute(select(func.count()).select_from(webhook_messages)
                                       .where(mine)).scalar_one()
        return total >= args.jobs and open_ == 0

    deadline = time.perf_counter() + 600
    while not settled() and time.perf_counter() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    stop.set()
    flood_connections = len(held)
    silent.close()
    for connection in held:
        connection.close()  # the flood's attempts end now
    for thread, dispatcher in zip(threads, dispatchers, strict=True):
        thread.join()
        dispatcher.close()

    stats = httpx.get(url.split("?")[0].replace("/hook", "/stats"), timeout=30).json()
    receiver.terminate()
    with services.db.connect() as connection:
        messages = connection.execute(
            select(webhook_messages.c.id, webhook_messages.c.status, webhook_messages.c.attempts,
                   jobs.c.finished_at)
            .join(jobs, jobs.c.id == webhook_messages.c.job_id)
            .where(webhook_messages.c.owner_id == owner.id)).all()
    expected = {row.id for row in messages}
    accepted: dict[str, int] = stats["accepted"]
    lost = expected - set(accepted)
    doubled = [mid for mid, count in accepted.items() if count > 1]
    delays = sorted(stats["received_at"][row.id] - row.finished_at
                    for row in messages if row.id in stats["received_at"])

    report = {
        "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "database": services.db.dialect.name, "mode": args.mode, "jobs": args.jobs,
        "dispatchers": args.dispatchers, "concurrency": args.concurrency, "flaky": args.flaky,
        "submit_s": round(submitted, 2), "finish_jobs_s": round(finishing, 2),
        "deliver_s": round(elapsed, 2),
        "deliveries_per_s": round(len(accepted) / elapsed, 1),
        "http_calls": stats["calls"],
        # CPU of this process (dispatcher, plus the worker in `live` mode) per HTTP call.
        "cpu_ms_per_call": round(cpu * 1000 / max(1, stats["calls"]), 2),
        "attempts_recorded": sum(row.attempts for row in messages),
        "events": len(expected), "delivered": len(accepted), "lost": len(lost),
        "doubled": len(doubled), "bad_signatures": stats["bad_signatures"],
        "failed_messages": sum(1 for row in messages if row.status != "delivered"),
        "flood_jobs": args.flood, "flood_connections_opened": flood_connections,
    }
    if args.mode == "live" and delays:
        report["finish_to_receipt_ms"] = {
            "p50": round(statistics.median(delays) * 1000),
            "p95": round(delays[int(len(delays) * 0.95) - 1] * 1000),
            "p99": round(delays[max(0, int(len(delays) * 0.99) - 1)] * 1000),
            "max": round(delays[-1] * 1000)}
    print(json.dumps(report, indent=2))
    services.db.dispose()
    ok = not lost and not doubled and not stats["bad_signatures"] and len(expected) == args.jobs
    if args.flood and args.mode == "live":
        ok = ok and bool(delays) and report["finish_to_receipt_ms"]["p99"] < 2000
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
