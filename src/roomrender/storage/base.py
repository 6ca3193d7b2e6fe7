"""Where input and output files live. Keys are unguessable tokens chosen by the caller."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from roomrender.canonical.artifacts import EXTENSIONS


class FileMissing(KeyError):
    pass


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at `path` (a video, say) without reading it into memory."""
        ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str:
        """The URL a client downloads the file from."""
        ...

    def key_for_url(self, url: str) -> str | None:
        """The key of the file `url` points to, when it is one of this storage's own URLs."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file on this machine's disk, for the API to serve it at `/files/{key}`; None when
        the storage serves its files itself (an object store's URLs). FileMissing when a local
        file is not there."""
        ...


@dataclass(frozen=True)
class StorageOptions:
    """How a storage's files are reached, whatever its kind: `public_base_url` is this server's
    address (local files are served under it), `public_url` an object store's public address
    (None: presigned URLs, valid `presign_seconds`)."""

    public_base_url: str
    public_url: str | None = None
    presign_seconds: int = 3600


class StorageFactory(Protocol):
    """What a `roomrender.storage` entry point names: a storage from its URL (its scheme is the
    entry point's name)."""

    def __call__(self, url: str, options: StorageOptions) -> Storage: ...


def new_key(content_type: str, prefix: str = "") -> str:
    """A fresh unguessable key (128 random bits) with the type's file extension."""
    extension = EXTENSIONS.get(content_type, "bin")
    return f"{prefix}{secrets.token_hex(16)}.{extension}"
