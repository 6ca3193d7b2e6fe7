"""A real HTTP receiver on 127.0.0.1 that records every webhook call and answers as scripted."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verify(self, secret: str) -> Any:
        """The parsed body, if the signature verifies with `secret` (raises otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """Answers the scripted `(status, headers, delay)` replies in turn, then `default`."""

    def __init__(self, replies: list[int | tuple[int, dict[str, str], float]] | None = None,
                 default: int = 200, port: int = 0) -> None:
        self.replies = [(r, {}, 0.0) if isinstance(r, int) else r for r in replies or []]
        self.default = default
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                with receiver.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.calls.append(Call(self.path, headers, body))
                    status, reply_headers, delay = (receiver.replies.pop(0) if receiver.replies
                                                    else (receiver.default, {}, 0.0))
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for name, value in reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
