"""Storage backends, chosen by URL scheme among the `roomrender.storage` entry points: file:///path
(the default) and s3://bucket/prefix here, more from any installed distribution."""

from __future__ import annotations

from importlib.metadata import entry_points
from urllib.parse import urlparse

from roomrender.storage.base import FileMissing, Storage, StorageFactory, StorageOptions, new_key
from roomrender.storage.local import LocalStorage

__all__ = ["STORAGE_GROUP", "FileMissing", "LocalStorage", "Storage", "StorageOptions", "new_key",
           "open_storage"]

STORAGE_GROUP = "roomrender.storage"


def open_storage(url: str, public_base_url: str, *, public_url: str | None = None,
                 presign_seconds: int = 3600) -> Storage:
    """`public_url` and `presign_seconds` say how an object store's files are reached."""
    scheme = urlparse(url).scheme
    found = {point.name: point for point in entry_points(group=STORAGE_GROUP)}
    if scheme not in found:
        known = ", ".join(f"{name}://" for name in sorted(found)) or "none"
        raise ValueError(f"unknown storage URL {url!r}: the installed storages take {known}")
    factory: StorageFactory = found[scheme].load()
    return factory(url, StorageOptions(public_base_url, public_url, presign_seconds))
