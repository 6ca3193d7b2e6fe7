"""Boards (Luw's projects): named collections of kept images in nested folders. The owner of
`boards`, `board_folders` and `board_media`.

Every read and write is scoped to the key that made the board: another key's board, folder or
media answers NotFound, exactly like one that does not exist.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, CursorResult, delete, insert, select, update

from roomrender.accounts.keys import ApiKey
from roomrender.canonical.errors import InvalidRequest, NotFound
from roomrender.db.tables import board_folders, board_media, boards
from roomrender.jobs.service import JobService

MAX_NAME = 200
# Ids are positive 32-bit integers; any other number names nothing.
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Folder:
    id: int
    board_id: int
    parent_id: int | None
    name: str
    created_at: float


@dataclass(frozen=True)
class Media:
    id: int
    board_id: int
    folder_id: int | None
    url: str
    control_image: str | None
    extras: str | None
    created_at: float


@dataclass(frozen=True)
class Board:
    id: int
    name: str
    created_at: float
    updated_at: float
    folders: tuple[Folder, ...] = ()
    media: tuple[Media, ...] = ()


def new_id(result: CursorResult[Any]) -> int:
    """The id the database gave the row an insert wrote."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def known(object_id: int | None, what: str) -> int:
    """An id that may name a row; NotFound for any other number."""
    if object_id is None or not 1 <= object_id <= MAX_ID:
        raise NotFound(f"no {what} {object_id}")
    return object_id


def clean_name(name: str | None, what: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned:
        raise InvalidRequest(f"a {what} needs a name")
    if len(cleaned) > MAX_NAME:
        raise InvalidRequest(f"a {what}'s name is at most {MAX_NAME} characters")
    return cleaned


class BoardStore:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs
        self.files = jobs.files
        self.db = jobs.files.db

    # -- boards ---------------------------------------------------------------------------

    def create(self, owner: ApiKey, name: str | None) -> Board:
        now = time.time()
        with self.db.begin() as connection:
            board_id = new_id(connection.execute(insert(boards).values(
                owner_id=owner.id, name=clean_name(name, "board"), created_at=now,
                updated_at=now)))
        return self.get(owner, int(board_id))

    def listing(self, owner: ApiKey) -> list[Board]:
        with self.db.connect() as connection:
            rows = connection.execute(select(boards).where(boards.c.owner_id == owner.id)
                                      .order_by(boards.c.id)).all()
        return [Board(row.id, row.name, row.created_at, row.updated_at) for row in rows]

    def get(self, owner: ApiKey, board_id: int) -> Board:
        with self.db.connect() as connection:
            row = self._board_row(connection, owner, board_id)
            folders = connection.execute(select(board_folders).where(
                board_folders.c.board_id == board_id).order_by(board_folders.c.id)).all()
            media = connection.execute(select(board_media).where(
                board_media.c.board_id == board_id).order_by(board_media.c.id)).all()
        return Board(row.id, row.name, row.created_at, row.updated_at,
                     tuple(self._folder(f) for f in folders), tuple(self._media(m) for m in media))

    def rename(self, owner: ApiKey, board_id: int, name: str | None) -> Board:
        with self.db.begin() as connection:
            self._board_row(connection, owner, board_id)
            connection.execute(update(boards).where(boards.c.id == board_id).values(
                name=clean_name(name, "board"), updated_at=time.time()))
        return self.get(owner, board_id)

    def delete(self, owner: ApiKey, board_id: int) -> None:
        with self.db.begin() as connection:
            self._board_row(connection, owner, board_id)
            keys = self._media_keys(connection, board_media.c.board_id == board_id)
            connection.execute(delete(board_media).where(board_media.c.board_id == board_id))
            connection.execute(delete(board_folders).where(board_folders.c.board_id == board_id))
            connection.execute(delete(boards).where(boards.c.id == board_id))
        self.files.discard(keys)

    # -- folders --------------------------------------------------------------------------

    def folders(self, owner: ApiKey, board_id: int) -> list[Folder]:
        return list(self.get(owner, board_id).folders)

    def create_folder(self, owner: ApiKey, board_id: int, name: str | None,
                      parent_id: int | None = None) -> Folder:
        with self.db.begin() as connection:
            self._board_row(connection, owner, board_id)
            if parent_id is not None:
                self._folder_row(connection, board_id, parent_id)
            folder_id = new_id(connection.execute(insert(board_folders).values(
                board_id=board_id, parent_id=parent_id, name=clean_name(name, "folder"),
                created_at=time.time())))
            self._touch(connection, board_id)
            return self._folder(self._folder_row(connection, board_id, int(folder_id)))

    def update_folder(self, owner: ApiKey, board_id: int, folder_id: int, *,
                      name: str | None = None, parent_id: int | None = None) -> Folder:
        with self.db.begin() as connection:
            self._board_row(connection, owner, board_id)
            self._folder_row(connection, board_id, folder_id)
            values: dict[str, Any] = {}
            if name is not None:
                values["name"] = clean_name(name, "folder")
            if parent_id is not None:
                self._check_parent(connection, board_id, folder_id, parent_id)
                values["parent_id"] = parent_id
            if values:
                connection.execute(update(board_folders)
                                   .where(board_folders.c.id == folder_id).values(**values))
                self._touch(connection, board_id)
            return self._folder(self._folder_row(connection, board_id, folder_id))

    def delete_folder(self, owner: ApiKey, board_id: int, folder_id: int) -> None:
        """A folder goes with its subfolders and their media."""
        with self.db.begin() as connection:
            self._board_row(connection, owner, board_id)
            self._folder_row(connection, board_id, folder_id)
            rows = connection.execute(select(board_folders.c.id, board_folders.c.parent_id)
                                      .where(board_folders.c.board_id == board_id)).all()
            doomed = {folder_id}
            grew = True
            while grew:
                more = {row.id for row in rows if row.parent_id in doomed} - doomed
                doomed |= more
                grew = bool(more)
            keys = self._media_keys(connection, board_media.c.folder_id.in_(doomed))
            connection.execute(delete(board_media).where(board_media.c.folder_id.in_(doomed)))
            connection.execute(delete(board_folders).where(board_folders.c.id.in_(doomed)))
            self._touch(connection, board_id)
        self.files.discard(keys)

    # -- media ----------------------------------------------------------------------------

    def add_media(self, owner: ApiKey, board_id: int, url: str | None, *,
                  control_image: str | None = None, folder_id: int | None = None,
                  extras: str | None = None) -> Media:
        """Keep an image on the board: an upload, one of the key's job outputs or a URL (fetched
        through the safe fetch), copied so that it outlives the job or the upload."""
        if not url and not control_image:
            raise InvalidRequest("a board's media needs a url (and optionally a control_image)")
        with self.db.connect() as connection:
            self._board_row(connection, owner, board_id)
            if folder_id is not None:
                self._folder_row(connection, board_id, folder_id)
        kept = [self.jobs.keep_image(owner, ref, what) for ref, what in
                ((url or control_image, "url"), (control_image if url else None, "control_image"))
                if ref]
        try:
            with self.db.begin() as connection:
                self._board_row(connection, owner, board_id)
                if folder_id is not None:
                    self._folder_row(connection, board_id, folder_id)
                media_id = new_id(connection.execute(insert(board_media).values(
                    board_id=board_id, folder_id=folder_id, file_key=kept[0].key,
                    control_key=kept[1].key if len(kept) > 1 else None, extras=extras,
                    created_at=time.time())))
                self._touch(connection, board_id)
                row = self._media_row(connection, board_id, int(media_id))
        except BaseException:
            self.files.discard([file.key for file in kept])
            raise
        return self._media(row)

    def move_media(self, owner: ApiKey, board_id: int, media_id: int,
                   folder_id: int | None) -> Media:
        """Into a folder of the same board, or to its root (None)."""
        with self.db.begin() as connection:
            self._board_row(connection, owner, board_id)
            self._media_row(connection, board_id, media_id)
            if folder_id is not None:
                self._folder_row(connection, board_id, folder_id)
            connection.execute(update(board_media).where(board_media.c.id == media_id)
                               .values(folder_id=folder_id))
            self._touch(connection, board_id)
            return self._media(self._media_row(connection, board_id, media_id))

    def delete_media(self, owner: ApiKey, board_id: int, media_id: int) -> None:
        with self.db.begin() as connection:
            self._board_row(connection, owner, board_id)
            self._media_row(connection, board_id, media_id)
            keys = self._media_keys(connection, board_media.c.id == media_id)
            connection.execute(delete(board_media).where(board_media.c.id == media_id))
            self._touch(connection, board_id)
        self.files.discard(keys)

    # -- rows -----------------------------------------------------------------------------

    def _board_row(self, connection: Connection, owner: ApiKey, board_id: int) -> Any:
        known(board_id, "board")
        row = connection.execute(select(boards).where(
            boards.c.id == board_id, boards.c.owner_id == owner.id)).first()
        if row is None:
            raise NotFound(f"no board {board_id}")
        return row

    def _folder_row(self, connection: Connection, board_id: int, folder_id: int) -> Any:
        known(folder_id, "folder")
        row = connection.execute(select(board_folders).where(
            board_folders.c.id == folder_id, board_folders.c.board_id == board_id)).first()
        if row is None:
            raise NotFound(f"no folder {folder_id} in board {board_id}")
        return row

    def _media_row(self, connection: Connection, board_id: int, media_id: int) -> Any:
        known(media_id, "media")
        row = connection.execute(select(board_media).where(
            board_media.c.id == media_id, board_media.c.board_id == board_id)).first()
        if row is None:
            raise NotFound(f"no media {media_id} in board {board_id}")
        return row

    def _check_parent(self, connection: Connection, board_id: int, folder_id: int,
                      parent_id: int) -> None:
        """A folder moves under another folder of its board, never under itself or its own
        subfolders."""
        seen = parent_id
        while True:
            if seen == folder_id:
                raise InvalidRequest("a folder cannot be moved into itself or its own subfolder")
            parent = self._folder_row(connection, board_id, seen).parent_id
            if parent is None:
                return
            seen = parent

    def _media_keys(self, connection: Connection, where: Any) -> list[str]:
        rows = connection.execute(select(board_media.c.file_key, board_media.c.control_key)
                                  .where(where)).all()
        return [key for row in rows for key in (row.file_key, row.control_key) if key]

    def _touch(self, connection: Connection, board_id: int) -> None:
        connection.execute(update(boards).where(boards.c.id == board_id)
                           .values(updated_at=time.time()))

    def _folder(self, row: Any) -> Folder:
        return Folder(row.id, row.board_id, row.parent_id, row.name, row.created_at)

    def _media(self, row: Any) -> Media:
        storage = self.files.storage
        return Media(row.id, row.board_id, row.folder_id, storage.url(row.file_key),
                     storage.url(row.control_key) if row.control_key else None, row.extras,
                     row.created_at)
