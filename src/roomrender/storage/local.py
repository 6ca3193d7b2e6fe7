"""Files in a local folder, served by the API at {public_base_url}/files/{key}."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from roomrender.canonical.errors import StorageUnavailable
from roomrender.storage.base import FileMissing, StorageOptions

# A full or read-only disk, a quota, a dead device: the store may come back, nothing is wrong
# with the request.
UNAVAILABLE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM,
                      errno.EIO}
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_safe_key(key: str) -> bool:
    return bool(_SAFE_KEY.fullmatch(key)) and ".." not in key


def open_local(url: str, options: StorageOptions) -> LocalStorage:
    """`file:///path`: the `file` entry point of `roomrender.storage`."""
    return LocalStorage(Path(urlparse(url).path), options.public_base_url)


class LocalStorage:
    def __init__(self, root: Path, public_base_url: str) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.public_base_url = public_base_url.rstrip("/")

    def _path(self, key: str) -> Path:
        if not is_safe_key(key):
            raise FileMissing(key)
        return self.root / key[:2] / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._write(key, lambda handle: handle.write(data))

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        with path.open("rb") as source:
            self._write(key, lambda handle: shutil.copyfileobj(source, handle))

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        path = self._path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a reader never sees half a file.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
            os.replace(tmp, path)
        except OSError as failed:
            if tmp is not None:
                try:
                    os.unlink(tmp)  # no partial file stays behind
                except OSError:
                    pass
            self._raise_fault(failed, "stored")
            raise

    def _raise_fault(self, failed: OSError, doing: str) -> None:
        """A fault of the store itself (full, read-only, gone) raised as StorageUnavailable."""
        if failed.errno in UNAVAILABLE_ERRNOS:
            raise StorageUnavailable(
                f"files cannot be {doing} now: {os.strerror(failed.errno or 0).lower()} "
                f"({self.root})") from failed

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as missing:
            raise FileMissing(key) from missing

    def local_path(self, key: str) -> Path:
        """The file on disk, for serving it without reading it into memory."""
        path = self._path(key)
        if not path.is_file():
            raise FileMissing(key)
        return path

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except (FileNotFoundError, FileMissing):
            pass
        except OSError as failed:
            # A read-only mount refuses even to unlink a file that is not there.
            self._raise_fault(failed, "deleted")
            raise

    def url(self, key: str) -> str:
        return f"{self.public_base_url}/files/{key}"

    def key_for_url(self, url: str) -> str | None:
        """The key when `url` is one of this server's own file URLs."""
        base = f"{self.public_base_url}/files/"
        if not url.startswith(base):
            return None
        key = url[len(base):].split("?", 1)[0].split("#", 1)[0]
        return key if is_safe_key(key) else None
