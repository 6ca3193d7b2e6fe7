"""The file store: a blob in `Storage` and its row in the `files` table, kept together.

The only module that writes the `files` table. A row is written before its blob and removed when
the blob cannot be written, so the janitor can always find (and delete) what was stored; a row
without a job expires unless a job adopts it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from roomrender.canonical.errors import Conflict, Unavailable
from roomrender.db.tables import files
from roomrender.storage.base import Storage
from roomrender.storage.local import is_safe_key


@dataclass(frozen=True)
class StoredFile:
    key: str
    url: str
    content_type: str
    width: int | None
    height: int | None
    size: int
    expires_at: float | None
    owner_id: str | None = None
    kind: str = "upload"
    job_id: str | None = None
    # The client's file name, when it gave one; when the row was written (epoch seconds).
    name: str | None = None
    created_at: float | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or time.time())


@dataclass(frozen=True)
class NewFile:
    """A blob to store and what its row says about it: its bytes, or a file on disk (a video),
    stored without reading it into memory."""

    key: str
    data: bytes | Path
    content_type: str
    width: int | None
    height: int | None

    @property
    def size(self) -> int:
        return self.data.stat().st_size if isinstance(self.data, Path) else len(self.data)

    def put_into(self, storage: Storage) -> None:
        if isinstance(self.data, Path):
            storage.put_file(self.key, self.data, self.content_type)
        else:
            storage.put(self.key, self.data, self.content_type)


def output_keys(output: Mapping[str, Any]) -> list[str]:
    """The stored files one of a job's output records names: its own, and a video's poster."""
    return [output["key"], *([output["poster_key"]] if output.get("poster_key") else [])]


class FileStore:
    def __init__(self, db: Engine, storage: Storage) -> None:
        self.db = db
        self.storage = storage

    # -- writing --------------------------------------------------------------------------

    def save(self, owner_id: str, new: NewFile, *, kind: str, name: str | None = None,
             expires_at: float | None = None) -> StoredFile:
        """Store one file under `new.key`, once: a second save under the same key is a Conflict."""
        now = time.time()
        try:
            # The row first: of two saves racing for one key, only one writes the blob.
            with self.db.begin() as connection:
                connection.execute(insert(files).values(
                    key=new.key, owner_id=owner_id, kind=kind, name=name,
                    content_type=new.content_type, width=new.width, height=new.height,
                    size=new.size, created_at=now, expires_at=expires_at,
                ))
        except IntegrityError as taken:
            raise Conflict(f"a file was already stored as {new.key!r}", code="file_exists") from taken
        try:
            new.put_into(self.storage)
        except BaseException:
            self.forget([new.key])
            raise
        return StoredFile(new.key, self.storage.url(new.key), new.content_type, new.width,
                          new.height, new.size, expires_at, owner_id, kind, name=name,
                          created_at=now)

    def save_all(self, owner_id: str, news: list[NewFile], *, kind: str) -> list[StoredFile]:
        """Store every file or none: when one cannot be stored, those stored before it are
        deleted again and the error raised."""
        stored: list[StoredFile] = []
        try:
            for new in news:
                stored.append(self.save(owner_id, new, kind=kind))
        except BaseException:
            self.discard([item.key for item in stored])
            raise
        return stored

    def save_pending(self, groups: Mapping[str, tuple[str, list[NewFile]]], *, kind: str,
                     expires_at: float) -> dict[str, Exception]:
        """Store files that jobs have yet to adopt, `groups` by job id: (owner id, files). They
        expire at `expires_at` unless their job adopts them. One transaction for every row, then
        the blobs; a group whose blobs cannot all be stored is removed, and its error answered."""
        now = time.time()
        rows = [
            dict(key=item.key, owner_id=owner_id, kind=kind, job_id=None,
                 content_type=item.content_type, width=item.width, height=item.height,
                 size=item.size, created_at=now, expires_at=expires_at)
            for owner_id, items in groups.values() for item in items
        ]
        if rows:
            with self.db.begin() as connection:
                connection.execute(insert(files), rows)
        failed: dict[str, Exception] = {}
        for group, (_owner_id, items) in groups.items():
            written: list[str] = []
            try:
                for item in items:
                    item.put_into(self.storage)
                    written.append(item.key)
            except Exception as failure:
                failed[group] = failure
                # A blob never written needs no delete (a read-only store refuses even that).
                self.forget([item.key for item in items if item.key not in written])
                self.discard(written)
        return failed

    def attach_to_job(self, connection: Connection, keys: Iterable[str], job_id: str) -> None:
        """Inputs stored for a request become the job's, in the transaction that creates it."""
        connection.execute(update(files).where(files.c.key.in_(list(keys)),
                                               files.c.job_id.is_(None)).values(job_id=job_id))

    def adopt(self, connection: Connection, job_of_key: Mapping[str, str],
              expires_at: float | None) -> None:
        """Pending outputs become their job's, in the transaction that succeeds it."""
        if job_of_key:
            connection.execute(
                update(files).where(files.c.key.in_(list(job_of_key)))
                .values(job_id=case(dict(job_of_key), value=files.c.key), expires_at=expires_at)
            )

    def expire_inputs_of(self, job_ids: Any, now: float | None = None) -> int:
        """Inputs (kind "input") of these jobs (a subquery of ids) expire now."""
        now = time.time() if now is None else now
        with self.db.begin() as connection:
            result = connection.execute(
                update(files)
                .where(files.c.kind == "input", files.c.expires_at.is_(None),
                       files.c.job_id.in_(job_ids))
                .values(expires_at=now)
            )
        return result.rowcount or 0

    # -- removing -------------------------------------------------------------------------

    def discard(self, keys: list[str]) -> list[str]:
        """Delete these files, blobs and rows. A blob the store cannot delete now (read-only,
        gone) keeps its row, expiring at once, so the janitor deletes both once the store is
        back: no row is left without its blob, no blob without its row. The keys kept so."""
        kept: list[str] = []
        for key in keys:
            try:
                self.storage.delete(key)
            except Unavailable:
                kept.append(key)
        self.forget([key for key in keys if key not in kept])
        if kept:
            with self.db.begin() as connection:
                connection.execute(update(files).where(files.c.key.in_(kept))
                                   .values(expires_at=time.time()))
        return kept

    def forget(self, keys: list[str]) -> None:
        if keys:
            with self.db.begin() as connection:
                connection.execute(delete(files).where(files.c.key.in_(keys)))

    def delete_expired(self, now: float | None = None, limit: int = 500) -> int:
        now = time.time() if now is None else now
        with self.db.connect() as connection:
            keys = list(connection.execute(
                select(files.c.key).where(files.c.expires_at.is_not(None),
                                          files.c.expires_at <= now).limit(limit)
            ).scalars())
        return len(keys) - len(self.discard(keys))

    def probe(self) -> None:
        """Store and delete a tiny file: StorageUnavailable (or the store's error) when files
        cannot be written now."""
        key = f"probe-{uuid.uuid4().hex}.bin"
        self.storage.put(key, b"ready?", "application/octet-stream")
        self.storage.delete(key)

    # -- reading --------------------------------------------------------------------------

    def lookup(self, key: str) -> StoredFile | None:
        if not is_safe_key(key):
            return None  # no stored file has such a key; not worth a query (nor storable)
        with self.db.connect() as connection:
            row = connection.execute(select(files).where(files.c.key == key)).first()
        if row is None:
            return None
        return self._stored(row)

    def uploads(self, owner_id: str, *, limit: int, now: float | None = None) -> list[StoredFile]:
        """The owner's uploads not expired, newest first."""
        now = time.time() if now is None else now
        with self.db.connect() as connection:
            rows = connection.execute(
                select(files).where(files.c.owner_id == owner_id, files.c.kind == "upload",
                                    (files.c.expires_at.is_(None)) | (files.c.expires_at > now))
                .order_by(files.c.created_at.desc(), files.c.key.desc()).limit(limit)
            ).all()
        return [self._stored(row) for row in rows]

    def _stored(self, row: Any) -> StoredFile:
        return StoredFile(row.key, self.storage.url(row.key), row.content_type, row.width,
                          row.height, row.size, row.expires_at, row.owner_id, row.kind, row.job_id,
                          name=row.name, created_at=row.created_at)
