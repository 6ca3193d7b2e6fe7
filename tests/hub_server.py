"""A local HTTP server laid out like the Hugging Face Hub, for `roomrender models pull` tests.

Serves repositories from a folder (`<root>/<owner>/<name>/...`): the model info API
(`/api/models/<repo>[/revision/<rev>]`: its commit and file list) and files
(`/<repo>/resolve/<rev>/<path>`, HEAD and GET, with HTTP Range). It can drop the connection in
the middle of a file once, and it logs every request.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class HubState:
    root: Path
    # A file (repo/path) whose first GET is cut halfway through.
    drop_once: str | None = None
    log: list[Request] = field(default_factory=list)
    dropped: bool = False


def repo_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


class _Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _repo(self, path: str) -> Path | None:
        parts = path.strip("/").split("/")
        folder = self.state.root / parts[0] / parts[1] if len(parts) >= 2 else None
        return folder if folder is not None and folder.is_dir() else None

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, body: bool) -> None:
        path = self.path.split("?")[0]
        self.state.log.append(Request(self.command, path, self.headers.get("Range")))
        info = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?", path)
        if info:
            folder = self._repo(info.group(1))
            if folder is None:
                return self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
            payload = {"id": info.group(1), "modelId": info.group(1), "sha": COMMIT, "private": False,
                       "siblings": [{"rfilename": name} for name in repo_files(folder)]}
            return self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"}, body)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/[^/]+/(.+)", path)
        folder = self._repo(resolve.group(1)) if resolve else None
        if resolve is None or folder is None or not (folder / resolve.group(2)).is_file():
            return self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"}, body)
        data = (folder / resolve.group(2)).read_bytes()
        headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": COMMIT,
                   "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        start = 0
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            start = int(wanted[len("bytes="):].split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        name = f"{resolve.group(1)}/{resolve.group(2)}"
        if body and name == self.state.drop_once and not self.state.dropped and len(data) > 2:
            # Promise the whole file, send half, hang up.
            self.state.dropped = True
            self.send_response(200)
            for key, value in {**headers, "Content-Length": str(len(data))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self._send(206 if start else 200, data[start:], headers, body)

    def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool = True) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)


class HubServer:
    def __init__(self, root: Path, drop_once: str | None = None) -> None:
        self.state = HubState(root, drop_once)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
