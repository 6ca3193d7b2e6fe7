"""The Grafana dashboard's queries against a real Prometheus scraping a real deployment.

Starts, all on 127.0.0.1: `roomrender serve --workers 0` (SQLite, preview engine), a
`roomrender worker --metrics-port`, a webhook receiver that answers 503 to every third call, and
Prometheus (Debian's `prometheus` package) scraping the API's /metrics and the worker's port every
second. Sends jobs through the native and Luw dialects with webhooks, polls them, asks for a path
that does not exist, then runs every query of deploy/grafana-dashboard.json through Prometheus's
HTTP API and prints how many series each answers. Queries that need what this run does not
produce (a GPU, failures, 5xx, a stopping worker) are expected to answer none.

    .venv/bin/python bench/dashboard_check.py [--jobs 40]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from roomrender.config import Settings  # noqa: E402
from roomrender.samples import room_photo  # noqa: E402
from roomrender.services import build_services  # noqa: E402

# What this run cannot show: no GPU, no failing job, no 5xx, no worker stopped mid-batch.
EXPECTED_EMPTY = ("roomrender_gpu_", "roomrender_job_failures_total", "roomrender_jobs_handed_back",
                  'status=~"5..', "roomrender_webhook_oldest_due_seconds")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def receiver() -> tuple[ThreadingHTTPServer, list[int]]:
    calls: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            calls.append(1)
            self.send_response(503 if len(calls) % 3 == 0 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, calls


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        sys.exit("needs Prometheus: apt-get install prometheus (Debian)")
    work = Path(tempfile.mkdtemp(prefix="roomrender-dashboard-"))
    api_port, worker_port, prom_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "ROOMRENDER_DATA_DIR": str(work / "data"), "ROOMRENDER_ALLOW_PRIVATE_URLS": "true",
           "ROOMRENDER_PUBLIC_BASE_URL": base, "ROOMRENDER_WEBHOOK_RETRY_SCHEDULE": "[0, 1, 1, 1]"}
    settings = Settings(data_dir=work / "data", allow_private_urls=True)
    services = build_services(settings)
    key = services.keys.create("dashboard-check")[1]
    services.db.dispose()
    hooks, calls = receiver()
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: roomrender-api\n    static_configs: [{{targets: ['127.0.0.1:{api_port}']}}]\n"
        f"  - job_name: roomrender-workers\n    static_configs: [{{targets: ['127.0.0.1:{worker_port}']}}]\n")
    logs = open(work / "processes.log", "wb")  # noqa: SIM115 - closed at the end
    started = [
        subprocess.Popen([sys.executable, "-m", "roomrender.cli", "serve", "--port", str(api_port),
                          "--workers", "0", "--log-level", "warning"], cwd=ROOT, env=env,
                         stdout=logs, stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "roomrender.cli", "worker", "--metrics-port",
                          str(worker_port)], cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT),
        subprocess.Popen([prometheus, f"--config.file={work / 'prometheus.yml'}",
                          f"--storage.tsdb.path={work / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=logs,
                         stderr=subprocess.STDOUT),
    ]
    try:
        wait_for(f"{base}/readyz", 60)
        wait_for(f"http://127.0.0.1:{prom_port}/-/ready", 60)
        auth = {"Authorization": f"Bearer {key}"}
        image = "data:image/jpeg;base64," + base64.b64encode(room_photo(160, 120, "JPEG")).decode()
        hook = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
        ids = []
        with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
            for index in range(args.jobs):
                if index % 4 == 3:
                    answer = client.post("/v2/generate", data={"model": "interior", "image": image,
                                                               "styles": "Modern"})
                else:
                    answer = client.post("/v1/jobs", json={"task": "restyle", "image": image,
                                                           "style": "modern", "webhook": hook})
                    ids.append(answer.json()["id"])
                answer.raise_for_status()
                time.sleep(0.1)
            client.get("/no/such/path")
            for _ in range(3):
                for job_id in ids:
                    client.get(f"/v1/jobs/{job_id}")
                time.sleep(1)
        time.sleep(12)  # a few more scrapes, and the webhook retries
        dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
        print(f"{len(calls)} webhook calls received; Prometheus scraped every second")
        up = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": "up"}).json()
        print("up:", {r["metric"]["job"]: r["value"][1] for r in up["data"]["result"]})
        unexpected = 0
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                query = target["expr"].replace("$__rate_interval", "30s")
                answer = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                                   params={"query": query}).json()
                if answer["status"] != "success":
                    print(f"ERROR  {panel['title']}: {answer.get('error')}")
                    unexpected += 1
                    continue
                series = answer["data"]["result"]
                expected_empty = any(marker in query for marker in EXPECTED_EMPTY)
                flag = "ok" if series or expected_empty else "EMPTY"
                unexpected += flag == "EMPTY"
                sample = series[0]["value"][1] if series else "-"
                print(f"{flag:5s}  {len(series):3d} series  {sample:>12.12s}  {panel['title']} "
                      f"[{target['legendFormat']}]")
        print(f"queries answering nothing unexpectedly: {unexpected}")
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
        hooks.shutdown()
        logs.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
