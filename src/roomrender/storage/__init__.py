"""Storage backends, chosen by URL: file:///path (default) or s3://bucket/prefix."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from roomrender.storage.base import FileMissing, Storage, new_key
from roomrender.storage.local import LocalStorage

__all__ = ["FileMissing", "LocalStorage", "Storage", "new_key", "open_storage"]


def open_storage(url: str, public_base_url: str, *, public_url: str | None = None,
                 presign_seconds: int = 3600) -> Storage:
    """`public_url` and `presign_seconds` say how an object store's files are reached (S3 only)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(parsed.path), public_base_url)
    if parsed.scheme == "s3":
        from roomrender.storage.s3 import S3Storage

        return S3Storage.from_url(url, public_url=public_url, presign_seconds=presign_seconds)
    raise ValueError(f"unknown storage URL {url!r}: use file:///path or s3://bucket/prefix")
