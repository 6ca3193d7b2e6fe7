"""The native API's workspace (/v1/boards, /v1/personas, /v1/teams/current): the same core stores
as Luw's workspace, in the native API's plain JSON (times in ISO 8601, errors in its shape).
Teams are made by the operator (`roomrender teams create`); a key manages the team it is in."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from roomrender.api.deps import Key, iso, services
from roomrender.api.errors import COMMON_STATUSES, native_responses

router = APIRouter(prefix="/v1", tags=["native workspace"],
                   responses=native_responses(401, 403, 404, 409, *COMMON_STATUSES))


def plain(value: Any) -> Any:
    """A core record as JSON: epoch seconds (`*_at`) as ISO 8601."""
    found = asdict(value) if hasattr(value, "__dataclass_fields__") else value
    if isinstance(found, dict):
        return {name: iso(item) if name.endswith("_at") and isinstance(item, float) else plain(item)
                for name, item in found.items()}
    if isinstance(found, (list, tuple)):
        return [plain(item) for item in found]
    return found


class Named(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class FolderIn(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    parent_id: int | None = Field(default=None, ge=1)


class MediaIn(BaseModel):
    url: str | None = None
    control_image: str | None = None
    folder_id: int | None = Field(default=None, ge=1)
    extras: str | None = None


class MoveIn(BaseModel):
    folder_id: int | None = Field(default=None, ge=1)


class PersonaIn(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    title: str | None = None
    knows: str | None = None
    profession: str | None = Field(default=None, max_length=64)


class TrainingIn(BaseModel):
    image: str | None = None
    slot: int | None = Field(default=None, ge=1)
    info: str | None = None
    extras: str | None = None


class InvitationIn(BaseModel):
    email: str = Field(max_length=320)
    role: str = "member"


class AnswerIn(BaseModel):
    token: str = Field(max_length=64)
    accept: bool


class RoleIn(BaseModel):
    role: str


# -- boards -------------------------------------------------------------------------------

@router.get("/boards", summary="The key's boards")
async def list_boards(request: Request, key: Key) -> dict[str, Any]:
    return {"boards": plain(await run_in_threadpool(services(request).boards.listing, key))}


@router.post("/boards", status_code=201, summary="Create a board")
async def create_board(request: Request, key: Key, body: Named) -> Any:
    return plain(await run_in_threadpool(services(request).boards.create, key, body.name))


@router.get("/boards/{board_id}", summary="A board, its folders and media")
async def get_board(request: Request, key: Key, board_id: int) -> Any:
    return plain(await run_in_threadpool(services(request).boards.get, key, board_id))


@router.patch("/boards/{board_id}", summary="Rename a board")
async def rename_board(request: Request, key: Key, board_id: int, body: Named) -> Any:
    return plain(await run_in_threadpool(services(request).boards.rename, key, board_id, body.name))


@router.delete("/boards/{board_id}", status_code=204, summary="Delete a board, its folders and media")
async def delete_board(request: Request, key: Key, board_id: int) -> None:
    await run_in_threadpool(services(request).boards.delete, key, board_id)


@router.post("/boards/{board_id}/folders", status_code=201, summary="Create a folder")
async def create_folder(request: Request, key: Key, board_id: int, body: FolderIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).boards.create_folder(
        key, board_id, body.name, body.parent_id)))


@router.patch("/boards/{board_id}/folders/{folder_id}", summary="Rename or move a folder")
async def update_folder(request: Request, key: Key, board_id: int, folder_id: int,
                        body: FolderIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).boards.update_folder(
        key, board_id, folder_id, name=body.name, parent_id=body.parent_id)))


@router.delete("/boards/{board_id}/folders/{folder_id}", status_code=204,
               summary="Delete a folder, its subfolders and their media")
async def delete_folder(request: Request, key: Key, board_id: int, folder_id: int) -> None:
    await run_in_threadpool(services(request).boards.delete_folder, key, board_id, folder_id)


@router.post("/boards/{board_id}/media", status_code=201,
             summary="Keep an image on a board (an upload id, a job output's URL, a URL, a data URI)")
async def add_media(request: Request, key: Key, board_id: int, body: MediaIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).boards.add_media(
        key, board_id, body.url, control_image=body.control_image, folder_id=body.folder_id,
        extras=body.extras)))


@router.post("/boards/{board_id}/media/{media_id}/move", summary="Move media (folder_id null: root)")
async def move_media(request: Request, key: Key, board_id: int, media_id: int, body: MoveIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).boards.move_media(
        key, board_id, media_id, body.folder_id)))


@router.delete("/boards/{board_id}/media/{media_id}", status_code=204, summary="Remove media")
async def delete_media(request: Request, key: Key, board_id: int, media_id: int) -> None:
    await run_in_threadpool(services(request).boards.delete_media, key, board_id, media_id)


# -- personas -----------------------------------------------------------------------------

@router.get("/personas", summary="The key's personas (profession, page, limit)")
async def list_personas(request: Request, key: Key, profession: str | None = None,
                        page: Annotated[int, Query(ge=1, le=10**6)] = 1,
                        limit: Annotated[int | None, Query(ge=1, le=100)] = None) -> dict[str, Any]:
    found = await run_in_threadpool(lambda: services(request).personas.listing(
        key, profession=profession, page=page, limit=limit))
    return {"personas": plain(found)}


@router.post("/personas", status_code=201, summary="Create a persona")
async def create_persona(request: Request, key: Key, body: PersonaIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).personas.create(
        key, name=body.name, title=body.title, knows=body.knows, profession=body.profession)))


@router.get("/personas/{persona_id}", summary="A persona and its trainings")
async def get_persona(request: Request, key: Key, persona_id: int) -> Any:
    return plain(await run_in_threadpool(services(request).personas.get, key, persona_id))


@router.patch("/personas/{persona_id}", summary="Change a persona")
async def update_persona(request: Request, key: Key, persona_id: int, body: PersonaIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).personas.update(
        key, persona_id, name=body.name, title=body.title, knows=body.knows,
        profession=body.profession)))


@router.delete("/personas/{persona_id}", status_code=204, summary="Delete a persona")
async def delete_persona(request: Request, key: Key, persona_id: int) -> None:
    await run_in_threadpool(services(request).personas.delete, key, persona_id)


@router.post("/personas/{persona_id}/trainings", status_code=201,
             summary="Add a training image (slot 1-6 style, 7 default input, 8+ free)")
async def add_training(request: Request, key: Key, persona_id: int, body: TrainingIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).personas.add_training(
        key, persona_id, body.image, slot=body.slot, info=body.info, extras=body.extras)))


@router.patch("/personas/{persona_id}/trainings/{training_id}", summary="Change a training")
async def update_training(request: Request, key: Key, persona_id: int, training_id: int,
                          body: TrainingIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).personas.update_training(
        key, persona_id, training_id, image=body.image, slot=body.slot, info=body.info,
        extras=body.extras)))


@router.delete("/personas/{persona_id}/trainings/{training_id}", status_code=204,
               summary="Delete a training")
async def delete_training(request: Request, key: Key, persona_id: int, training_id: int) -> None:
    await run_in_threadpool(services(request).personas.delete_training, key, persona_id, training_id)


@router.delete("/personas/{persona_id}/slots/{slot}", status_code=204, summary="Empty a slot")
async def clear_slot(request: Request, key: Key, persona_id: int, slot: int) -> None:
    await run_in_threadpool(services(request).personas.clear_slot, key, persona_id, slot)


# -- the caller's team --------------------------------------------------------------------

def _member(member: Any) -> dict[str, Any]:
    body = plain(member)
    body.pop("key_id", None)
    return dict(body)


@router.get("/teams/current", summary="The caller's team, its role and the shared balance")
async def current_team(request: Request, key: Key) -> dict[str, Any]:
    teams = services(request).teams
    team, me = await run_in_threadpool(teams.team_of, key)
    balance = await run_in_threadpool(teams.balance, key)
    return {**plain(team), "role": me.role, "member_id": me.id,
            "credits": {"granted": balance.granted, "used": balance.used,
                        "available": balance.available}}


@router.get("/teams/current/members", summary="The team's members")
async def team_members(request: Request, key: Key) -> dict[str, Any]:
    found = await run_in_threadpool(services(request).teams.members, key)
    return {"members": [_member(member) for member in found]}


@router.get("/teams/current/usage", summary="Credits per member per UTC day")
async def team_usage(request: Request, key: Key,
                     days: Annotated[int, Query(ge=1, le=366)] = 30) -> dict[str, Any]:
    found = await run_in_threadpool(lambda: services(request).teams.usage(key, days=days))
    return {"usage": plain(found)}


@router.get("/teams/current/invitations", summary="Pending invitations (owner, admin)")
async def invitations(request: Request, key: Key) -> dict[str, Any]:
    return {"invitations": plain(await run_in_threadpool(services(request).teams.pending, key))}


@router.post("/teams/current/invitations", status_code=201, summary="Invite (owner, admin)")
async def invite(request: Request, key: Key, body: InvitationIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).teams.invite(
        key, body.email, body.role)))


@router.post("/teams/invitations/answer", summary="Answer an invitation by its token, once")
async def answer(request: Request, key: Key, body: AnswerIn) -> Any:
    return plain(await run_in_threadpool(lambda: services(request).teams.respond(
        key, body.token, body.accept)))


@router.delete("/teams/current/members/{member_id}", status_code=204, summary="Remove a member")
async def remove_member(request: Request, key: Key, member_id: int) -> None:
    await run_in_threadpool(services(request).teams.remove, key, member_id)


@router.put("/teams/current/members/{member_id}/role", summary="Set a member's role (the owner)")
async def set_role(request: Request, key: Key, member_id: int, body: RoleIn) -> Any:
    return _member(await run_in_threadpool(lambda: services(request).teams.set_role(
        key, member_id, body.role)))
