"""Personas (Luw's saved style profiles) and their training images. The owner of `personas` and
`persona_trainings`.

Slots 1-6 hold style images, slot 7 the default input image, 8 and up are free; a training with
no slot is a "liked" design. Setting a slot replaces what it held. A generate naming a persona
(`pid`) takes its style images as references and slot 7 as its input when it has none
(`conditioning`). Another key's persona answers NotFound, like one that does not exist.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from roomrender.accounts.keys import ApiKey
from roomrender.canonical.errors import InvalidRequest, NotFound
from roomrender.db.tables import persona_trainings, personas
from roomrender.jobs.service import JobService
from roomrender.workspace.boards import clean_name, known, new_id

STYLE_SLOTS = range(1, 7)
INPUT_SLOT = 7
MAX_PAGE = 100
MAX_SLOT = 1000


@dataclass(frozen=True)
class Training:
    id: int
    persona_id: int
    slot: int | None
    image: str
    info: str | None
    extras: str | None
    created_at: float


@dataclass(frozen=True)
class Persona:
    id: int
    name: str
    title: str | None
    knows: str | None
    profession: str | None
    generations_count: int
    created_at: float
    updated_at: float
    trainings: tuple[Training, ...] = ()


@dataclass(frozen=True)
class Conditioning:
    """What a persona brings to a generate: its style images (slots 1-6, in slot order) and its
    default input (slot 7), as this server's file URLs."""

    styles: list[str] = field(default_factory=list)
    default_input: str | None = None


def _slot(slot: int | None) -> int | None:
    if slot is not None and not 1 <= slot <= MAX_SLOT:
        raise InvalidRequest(f"a training slot is 1 to {MAX_SLOT}, not {slot}")
    return slot


def _profession(profession: str | None) -> str | None:
    if profession is not None and len(profession) > 64:
        raise InvalidRequest("a profession is at most 64 characters (Interior, Exterior, ...)")
    return profession or None


class PersonaStore:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs
        self.files = jobs.files
        self.db = jobs.files.db

    # -- personas -------------------------------------------------------------------------

    def create(self, owner: ApiKey, *, name: str | None, title: str | None = None,
               knows: str | None = None, profession: str | None = None) -> Persona:
        now = time.time()
        with self.db.begin() as connection:
            persona_id = new_id(connection.execute(insert(personas).values(
                owner_id=owner.id, name=clean_name(name, "persona"), title=title, knows=knows,
                profession=_profession(profession), generations_count=0, created_at=now,
                updated_at=now)))
        return self.get(owner, int(persona_id))

    def listing(self, owner: ApiKey, *, profession: str | None = None, page: int = 1,
             limit: int | None = None, with_trainings: bool = True) -> list[Persona]:
        """Newest change first; `profession` (case-insensitive) and paging as Luw's
        `ft-<profession>` listing."""
        if not 1 <= page <= 10**6 or (limit is not None and not 1 <= limit <= MAX_PAGE + 1):
            raise InvalidRequest(f"page is 1 to 1000000 and limit 1 to {MAX_PAGE}")
        query = select(personas).where(personas.c.owner_id == owner.id)
        if profession is not None:
            query = query.where(func.lower(personas.c.profession) == profession.lower())
        query = query.order_by(personas.c.updated_at.desc(), personas.c.id.desc())
        if limit is not None:
            query = query.offset((page - 1) * limit).limit(limit)
        with self.db.connect() as connection:
            rows = connection.execute(query).all()
            trainings = self._trainings(connection, [row.id for row in rows]) if with_trainings else {}
        return [self._persona(row, trainings.get(row.id, ())) for row in rows]

    def get(self, owner: ApiKey, persona_id: int) -> Persona:
        with self.db.connect() as connection:
            row = self._row(connection, owner, persona_id)
            return self._persona(row, self._trainings(connection, [persona_id]).get(persona_id, ()))

    def update(self, owner: ApiKey, persona_id: int, *, name: str | None = None,
               title: str | None = None, knows: str | None = None,
               profession: str | None = None) -> Persona:
        values: dict[str, Any] = {"updated_at": time.time()}
        if name is not None:
            values["name"] = clean_name(name, "persona")
        values.update({column: value for column, value in
                       (("title", title), ("knows", knows), ("profession", _profession(profession)))
                       if value is not None})
        with self.db.begin() as connection:
            self._row(connection, owner, persona_id)
            connection.execute(update(personas).where(personas.c.id == persona_id).values(**values))
        return self.get(owner, persona_id)

    def delete(self, owner: ApiKey, persona_id: int) -> None:
        with self.db.begin() as connection:
            self._row(connection, owner, persona_id)
            keys = self._keys(connection, persona_trainings.c.persona_id == persona_id)
            connection.execute(delete(persona_trainings)
                               .where(persona_trainings.c.persona_id == persona_id))
            connection.execute(delete(personas).where(personas.c.id == persona_id))
        self.files.discard(keys)

    # -- trainings ------------------------------------------------------------------------

    def trainings(self, owner: ApiKey, persona_id: int) -> list[Training]:
        return list(self.get(owner, persona_id).trainings)

    def add_training(self, owner: ApiKey, persona_id: int, image: str | None, *,
                     slot: int | None = None, info: str | None = None,
                     extras: str | None = None) -> Training:
        """Keep an image for the persona; in a slot, it replaces what the slot held."""
        if not image:
            raise InvalidRequest("a training needs an image")
        slot = _slot(slot)
        self.get(owner, persona_id)
        kept = self.jobs.keep_image(owner, image, "image")
        try:
            with self.db.begin() as connection:
                self._row(connection, owner, persona_id)
                replaced = self._clear_slot(connection, persona_id, slot) if slot else []
                training_id = new_id(connection.execute(insert(persona_trainings).values(
                    persona_id=persona_id, slot=slot, file_key=kept.key, info=info,
                    extras=extras, created_at=time.time())))
                self._touch(connection, persona_id)
                row = self._training_row(connection, persona_id, int(training_id))
        except BaseException:
            self.files.discard([kept.key])
            raise
        self.files.discard(replaced)
        return self._training(row)

    def update_training(self, owner: ApiKey, persona_id: int, training_id: int, *,
                        image: str | None = None, slot: int | None = None,
                        info: str | None = None, extras: str | None = None) -> Training:
        slot = _slot(slot)
        with self.db.connect() as connection:
            self._row(connection, owner, persona_id)
            self._training_row(connection, persona_id, training_id)
        kept = self.jobs.keep_image(owner, image, "image") if image else None
        doomed: list[str] = []
        try:
            with self.db.begin() as connection:
                self._row(connection, owner, persona_id)
                old = self._training_row(connection, persona_id, training_id)
                values: dict[str, Any] = {}
                if slot is not None and slot != old.slot:
                    doomed += self._clear_slot(connection, persona_id, slot)
                    values["slot"] = slot
                if kept is not None:
                    doomed.append(old.file_key)
                    values["file_key"] = kept.key
                values.update({column: value for column, value in
                               (("info", info), ("extras", extras)) if value is not None})
                if values:
                    connection.execute(update(persona_trainings)
                                       .where(persona_trainings.c.id == training_id).values(**values))
                    self._touch(connection, persona_id)
                row = self._training_row(connection, persona_id, training_id)
        except BaseException:
            if kept is not None:
                self.files.discard([kept.key])
            raise
        self.files.discard(doomed)
        return self._training(row)

    def delete_training(self, owner: ApiKey, persona_id: int, training_id: int) -> None:
        with self.db.begin() as connection:
            self._row(connection, owner, persona_id)
            row = self._training_row(connection, persona_id, training_id)
            connection.execute(delete(persona_trainings)
                               .where(persona_trainings.c.id == training_id))
            self._touch(connection, persona_id)
        self.files.discard([row.file_key])

    def clear_slot(self, owner: ApiKey, persona_id: int, slot: int) -> int:
        """Empty a slot; how many trainings it held (0 or 1)."""
        _slot(slot)
        with self.db.begin() as connection:
            self._row(connection, owner, persona_id)
            keys = self._clear_slot(connection, persona_id, slot)
            self._touch(connection, persona_id)
        self.files.discard(keys)
        return len(keys)

    # -- generating -----------------------------------------------------------------------

    def conditioning(self, owner: ApiKey, persona_id: int) -> Conditioning:
        """What a generate with `pid=persona_id` takes from the persona; counts the generation."""
        with self.db.begin() as connection:
            self._row(connection, owner, persona_id)
            rows = connection.execute(select(persona_trainings).where(
                persona_trainings.c.persona_id == persona_id,
                persona_trainings.c.slot.is_not(None)).order_by(persona_trainings.c.slot)).all()
            connection.execute(update(personas).where(personas.c.id == persona_id).values(
                generations_count=personas.c.generations_count + 1))
        url = self.files.storage.url
        return Conditioning([url(row.file_key) for row in rows if row.slot in STYLE_SLOTS],
                            next((url(row.file_key) for row in rows if row.slot == INPUT_SLOT), None))

    # -- rows -----------------------------------------------------------------------------

    def _row(self, connection: Connection, owner: ApiKey, persona_id: int) -> Any:
        known(persona_id, "persona")
        row = connection.execute(select(personas).where(
            personas.c.id == persona_id, personas.c.owner_id == owner.id)).first()
        if row is None:
            raise NotFound(f"no persona {persona_id}")
        return row

    def _training_row(self, connection: Connection, persona_id: int, training_id: int) -> Any:
        known(training_id, "training")
        row = connection.execute(select(persona_trainings).where(
            persona_trainings.c.id == training_id,
            persona_trainings.c.persona_id == persona_id)).first()
        if row is None:
            raise NotFound(f"no training {training_id} of persona {persona_id}")
        return row

    def _clear_slot(self, connection: Connection, persona_id: int, slot: int) -> list[str]:
        where = (persona_trainings.c.persona_id == persona_id) & (persona_trainings.c.slot == slot)
        keys = self._keys(connection, where)
        connection.execute(delete(persona_trainings).where(where))
        return keys

    def _keys(self, connection: Connection, where: Any) -> list[str]:
        return list(connection.execute(select(persona_trainings.c.file_key).where(where)).scalars())

    def _trainings(self, connection: Connection, ids: list[int]) -> dict[int, tuple[Training, ...]]:
        found: dict[int, list[Training]] = {}
        if ids:
            for row in connection.execute(select(persona_trainings).where(
                    persona_trainings.c.persona_id.in_(ids)).order_by(persona_trainings.c.id)):
                found.setdefault(row.persona_id, []).append(self._training(row))
        return {key: tuple(value) for key, value in found.items()}

    def _touch(self, connection: Connection, persona_id: int) -> None:
        connection.execute(update(personas).where(personas.c.id == persona_id)
                           .values(updated_at=time.time()))

    def _persona(self, row: Any, trainings: tuple[Training, ...]) -> Persona:
        return Persona(row.id, row.name, row.title, row.knows, row.profession,
                       int(row.generations_count), row.created_at, row.updated_at, trainings)

    def _training(self, row: Any) -> Training:
        return Training(row.id, row.persona_id, row.slot, self.files.storage.url(row.file_key),
                        row.info, row.extras, row.created_at)
