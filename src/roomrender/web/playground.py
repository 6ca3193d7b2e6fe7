"""Serves the playground: `/` (the page, with a strict Content-Security-Policy) and its files
under `/playground/`. The page talks to the native API (`/v1`) with the key the user enters."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
INLINE_SCRIPT = re.compile(rb"<script[^>]*>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


class Revalidated(StaticFiles):
    """Static files that browsers revalidate (by ETag) on each load, so an upgrade shows at once."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


def content_security_policy(html: bytes) -> str:
    """Scripts and connections from this server only (inline scripts by hash: the import map);
    images and videos also from http(s) URLs, as results may live in an object store."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
        for body in INLINE_SCRIPT.findall(html) if body.strip()
    )
    return "; ".join([
        "default-src 'self'",
        # 'wasm-unsafe-eval': <model-viewer> compiles its WebAssembly decoders (no JS eval).
        f"script-src 'self' {hashes} 'wasm-unsafe-eval'",
        # img-comparison-slider styles its shadow root with an inline <style>.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: http: https:",
        # Video results (room tours), from this server or an object store.
        "media-src 'self' http: https:",
        # <model-viewer> fetches a GLB, then its embedded textures as blob: URLs.
        "connect-src 'self' blob: data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


@cache
def index_page() -> tuple[bytes, str]:
    html = (STATIC / "index.html").read_bytes()
    return html, content_security_policy(html)


@router.get("/")
def playground() -> Response:
    html, policy = index_page()
    return Response(html, media_type="text/html; charset=utf-8", headers={
        "Content-Security-Policy": policy,
        "Cache-Control": "no-cache",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    })


router.mount("/playground", Revalidated(directory=STATIC), name="playground")
