#!/usr/bin/env python3
"""The image's HEALTHCHECK: `roomrender-healthcheck [PATH]` (default /healthz).

One image runs every role, so the check looks at what the container runs (PID 1's command line,
or its child's under `docker run --init`): a `serve` process must answer GET PATH on its port
with 200; a `worker` or `webhooks` process is healthy while it runs (a worker that stops
heartbeating loses its jobs to the others once its lease runs out, see docs/deploy.md).
"""

from __future__ import annotations

import os
import sys
import urllib.request


def _command_lines() -> list[list[str]]:
    lines = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
        except OSError:
            continue
        if argv:
            lines.append(argv)
    return lines


def _serve_port() -> int | None:
    for argv in _command_lines():
        names = [os.path.basename(arg) for arg in argv]
        if "roomrender" in names and "serve" in argv:
            if "--port" in argv[:-1]:
                return int(argv[argv.index("--port") + 1])
            for arg in argv:
                if arg.startswith("--port="):
                    return int(arg.split("=", 1)[1])
            return int(os.environ.get("ROOMRENDER_PORT", "8000"))
    return None


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    port = _serve_port()
    if port is None:
        return 0
    host = os.environ.get("ROOMRENDER_HOST", "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    url = f"http://{host}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except Exception as failure:  # noqa: BLE001 - any failure is "unhealthy"
        print(f"{url}: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
