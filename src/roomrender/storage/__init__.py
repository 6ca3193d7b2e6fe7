"""Storage backends, chosen by URL: file:///path (default) or s3://bucket/prefix."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from roomrender.storage.base import FileMissing, Storage, new_key
from roomrender.storage.local import LocalStorage

__all__ = ["FileMissing", "LocalStorage", "Storage", "new_key", "open_storage"]


def open_storage(url: str, public_base_url: str) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(parsed.path), public_base_url)
    if parsed.scheme == "s3":
        from roomrender.storage.s3 import S3Storage

        return S3Storage.from_url(url)
    raise ValueError(f"unknown storage URL {url!r}: use file:///path or s3://bucket/prefix")
