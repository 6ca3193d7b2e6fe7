"""Where input and output files live. Keys are unguessable tokens chosen by the caller."""

from __future__ import annotations

import secrets
from typing import Protocol

from roomrender.canonical.artifacts import EXTENSIONS


class FileMissing(KeyError):
    pass


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str) -> str:
        """The URL a client downloads the file from."""
        ...

    def key_for_url(self, url: str) -> str | None:
        """The key of the file `url` points to, when it is one of this storage's own URLs."""
        ...




def new_key(content_type: str, prefix: str = "") -> str:
    """A fresh unguessable key (128 random bits) with the type's file extension."""
    extension = EXTENSIONS.get(content_type, "bin")
    return f"{prefix}{secrets.token_hex(16)}.{extension}"
