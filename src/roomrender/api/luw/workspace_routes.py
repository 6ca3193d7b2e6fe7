"""The Luw workspace's routes (/v2/boards, /v2/personas, /v2/team): read the wire, call the core's stores
(`workspace/`), render with `workspace_presenters.py`. Another key's object is "not found"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from roomrender.api.deps import Key, services
from roomrender.api.luw.errors import WIRE_RESPONSES
from roomrender.api.luw.requests import flag, image_ref, integer, read_params, text
from roomrender.api.luw.workspace_presenters import (
    balance_body,
    board_body,
    folder_body,
    invitation_body,
    media_body,
    member_body,
    persona_body,
    training_body,
    usage_body,
    when,
)
from roomrender.canonical.errors import InvalidRequest

router = APIRouter(prefix="/v2", tags=["luw workspace"], responses=WIRE_RESPONSES)

OK: dict[str, Any] = {"status": True}


# -- boards -------------------------------------------------------------------------------

@router.get("/boards", summary="The key's boards (projects)")
async def list_boards(request: Request, key: Key) -> dict[str, Any]:
    found = await run_in_threadpool(services(request).boards.listing, key)
    return {"status": True, "boards": [board_body(board, full=False) for board in found]}


@router.post("/boards", summary="Create a board: {name}")
async def create_board(request: Request, key: Key) -> dict[str, Any]:
    params = await read_params(request)
    board = await run_in_threadpool(services(request).boards.create, key, text(params, "name"))
    return {"status": True, "board": board_body(board)}


@router.get("/boards/{board_id}", summary="A board with its folders and media")
async def get_board(request: Request, key: Key, board_id: int) -> dict[str, Any]:
    board = await run_in_threadpool(services(request).boards.get, key, board_id)
    return {"status": True, "board": board_body(board)}


@router.put("/boards/{board_id}", summary="Rename a board: {name}")
async def rename_board(request: Request, key: Key, board_id: int) -> dict[str, Any]:
    params = await read_params(request)
    board = await run_in_threadpool(services(request).boards.rename, key, board_id,
                                    text(params, "name"))
    return {"status": True, "board": board_body(board)}


@router.delete("/boards/{board_id}", summary="Delete a board, its folders and media")
async def delete_board(request: Request, key: Key, board_id: int) -> dict[str, Any]:
    await run_in_threadpool(services(request).boards.delete, key, board_id)
    return OK


@router.get("/boards/{board_id}/folders", summary="A board's folders")
async def list_folders(request: Request, key: Key, board_id: int) -> dict[str, Any]:
    found = await run_in_threadpool(services(request).boards.folders, key, board_id)
    return {"status": True, "folders": [folder_body(folder) for folder in found]}


@router.post("/boards/{board_id}/folders", summary="Create a folder: {name, parent_id?}")
async def create_folder(request: Request, key: Key, board_id: int) -> dict[str, Any]:
    params = await read_params(request)
    folder = await run_in_threadpool(lambda: services(request).boards.create_folder(
        key, board_id, text(params, "name"), integer(params, "parent_id")))
    return {"status": True, "folder": folder_body(folder)}


@router.put("/boards/{board_id}/folders/{folder_id}", summary="Rename or move a folder: "
                                                             "{name?, parent_id?}")
async def update_folder(request: Request, key: Key, board_id: int, folder_id: int) -> dict[str, Any]:
    params = await read_params(request)
    folder = await run_in_threadpool(lambda: services(request).boards.update_folder(
        key, board_id, folder_id, name=text(params, "name"), parent_id=integer(params, "parent_id")))
    return {"status": True, "folder": folder_body(folder)}


@router.delete("/boards/{board_id}/folders/{folder_id}", summary="Delete a folder, its "
                                                                "subfolders and their media")
async def delete_folder(request: Request, key: Key, board_id: int, folder_id: int) -> dict[str, Any]:
    await run_in_threadpool(services(request).boards.delete_folder, key, board_id, folder_id)
    return OK


@router.post("/boards/{board_id}/media", summary="Keep an image on a board: {url (an upload, a "
                                                "result's URL, any https URL, a data URI), "
                                                "control_image?, folder_id?, extras?}")
async def add_media(request: Request, key: Key, board_id: int) -> dict[str, Any]:
    params = await read_params(request)
    media = await run_in_threadpool(lambda: services(request).boards.add_media(
        key, board_id, image_ref(params, "url"), control_image=image_ref(params, "control_image"),
        folder_id=integer(params, "folder_id"), extras=text(params, "extras")))
    return {"status": True, "media": media_body(media)}


@router.put("/boards/{board_id}/media/{media_id}/move", summary="Move media: {folder_id} "
                                                               "(null: the board's root)")
async def move_media(request: Request, key: Key, board_id: int, media_id: int) -> dict[str, Any]:
    params = await read_params(request)
    media = await run_in_threadpool(lambda: services(request).boards.move_media(
        key, board_id, media_id, integer(params, "folder_id")))
    return {"status": True, "media": media_body(media)}


@router.delete("/boards/{board_id}/media/{media_id}", summary="Remove media from a board")
async def delete_media(request: Request, key: Key, board_id: int, media_id: int) -> dict[str, Any]:
    await run_in_threadpool(services(request).boards.delete_media, key, board_id, media_id)
    return OK


# -- personas -----------------------------------------------------------------------------

def _persona_fields(params: dict[str, Any]) -> dict[str, str | None]:
    return {name: text(params, name) for name in ("name", "title", "knows", "profession")}


@router.get("/personas", summary="Every persona of the key, with its trainings")
async def list_personas(request: Request, key: Key) -> dict[str, Any]:
    found = await run_in_threadpool(services(request).personas.listing, key)
    return {"status": True, "personas": [persona_body(persona) for persona in found]}


@router.get("/personas/ft-{profession}", summary="One tool's personas, paged (page, limit, slim)")
async def list_profession(request: Request, key: Key, profession: str,
                          page: Annotated[int, Query(ge=1, le=10**6)] = 1,
                          limit: Annotated[int, Query(ge=1, le=101)] = 20,
                          slim: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    lean = flag({"slim": slim}, "slim")
    found = await run_in_threadpool(lambda: services(request).personas.listing(
        key, profession=profession, page=page, limit=limit, with_trainings=True))
    return {"status": True, "page": page,
            "personas": [persona_body(persona, slim=lean) for persona in found]}


@router.post("/personas", summary="Create a persona: {name, title?, knows?, profession?}")
async def create_persona(request: Request, key: Key) -> dict[str, Any]:
    params = await read_params(request)
    persona = await run_in_threadpool(lambda: services(request).personas.create(
        key, **_persona_fields(params)))
    return {"status": True, "persona": persona_body(persona)}


@router.get("/personas/{persona_id}", summary="A persona with its trainings")
async def get_persona(request: Request, key: Key, persona_id: int) -> dict[str, Any]:
    persona = await run_in_threadpool(services(request).personas.get, key, persona_id)
    return {"status": True, "persona": persona_body(persona)}


@router.put("/personas/{persona_id}", summary="Change a persona: {name?, title?, knows?, "
                                              "profession?}")
async def update_persona(request: Request, key: Key, persona_id: int) -> dict[str, Any]:
    params = await read_params(request)
    persona = await run_in_threadpool(lambda: services(request).personas.update(
        key, persona_id, **_persona_fields(params)))
    return {"status": True, "persona": persona_body(persona)}


@router.delete("/personas/{persona_id}", summary="Delete a persona and its trainings")
async def delete_persona(request: Request, key: Key, persona_id: int) -> dict[str, Any]:
    await run_in_threadpool(services(request).personas.delete, key, persona_id)
    return OK


@router.get("/personas/{persona_id}/trainings", summary="A persona's training images")
async def list_trainings(request: Request, key: Key, persona_id: int) -> dict[str, Any]:
    found = await run_in_threadpool(services(request).personas.trainings, key, persona_id)
    return {"status": True, "trainings": [training_body(training) for training in found]}


@router.post("/personas/{persona_id}/trainings", summary="Add a training image: {image, slot? "
                                                        "(1-6 style, 7 default input, 8+ free), "
                                                        "info?, extras?}")
async def add_training(request: Request, key: Key, persona_id: int) -> dict[str, Any]:
    params = await read_params(request)
    training = await run_in_threadpool(lambda: services(request).personas.add_training(
        key, persona_id, image_ref(params, "image"), slot=integer(params, "slot"),
        info=text(params, "info"), extras=text(params, "extras")))
    return {"status": True, "training": training_body(training)}


@router.put("/personas/{persona_id}/trainings/{training_id}", summary="Change a training: "
                                                                     "{image?, slot?, info?, extras?}")
async def update_training(request: Request, key: Key, persona_id: int,
                          training_id: int) -> dict[str, Any]:
    params = await read_params(request)
    training = await run_in_threadpool(lambda: services(request).personas.update_training(
        key, persona_id, training_id, image=image_ref(params, "image"),
        slot=integer(params, "slot"), info=text(params, "info"), extras=text(params, "extras")))
    return {"status": True, "training": training_body(training)}


@router.delete("/personas/{persona_id}/trainings/{training_id}", summary="Delete a training")
async def delete_training(request: Request, key: Key, persona_id: int,
                          training_id: int) -> dict[str, Any]:
    await run_in_threadpool(services(request).personas.delete_training, key, persona_id,
                            training_id)
    return OK


@router.delete("/personas/{persona_id}/trainings/slot/{slot}", summary="Empty a slot")
async def clear_slot(request: Request, key: Key, persona_id: int, slot: int) -> dict[str, Any]:
    cleared = await run_in_threadpool(services(request).personas.clear_slot, key, persona_id, slot)
    return {"status": True, "cleared": cleared}


# -- the team -----------------------------------------------------------------------------

@router.get("/team/info", summary="The caller's team, its role in it and its balance")
async def team_info(request: Request, key: Key) -> dict[str, Any]:
    teams = services(request).teams
    team, me = await run_in_threadpool(teams.team_of, key)
    balance = await run_in_threadpool(teams.balance, key)
    members = await run_in_threadpool(teams.members, key)
    return {"status": True, "team": {"id": team.id, "name": team.name,
                                     "created_at": when(team.created_at),
                                     "members_count": len(members), "plan": "self-hosted"},
            "role": me.role, "user_id": me.id, "credits": balance_body(balance)}


@router.get("/team/credits", summary="The team's shared balance")
async def team_credits(request: Request, key: Key) -> dict[str, Any]:
    balance = await run_in_threadpool(services(request).teams.balance, key)
    return {"status": True, "credits": balance_body(balance)}


@router.get("/team/usage", summary="Credits per member and per day (the last 30 days)")
async def team_usage(request: Request, key: Key,
                     days: Annotated[int, Query(ge=1, le=366)] = 30) -> dict[str, Any]:
    teams = services(request).teams
    rows = await run_in_threadpool(lambda: teams.usage(key, days=days))
    return usage_body(rows, await run_in_threadpool(teams.members, key))


@router.get("/team/members", summary="The team's members and their roles")
async def team_members(request: Request, key: Key) -> dict[str, Any]:
    found = await run_in_threadpool(services(request).teams.members, key)
    return {"status": True, "members": [member_body(member) for member in found]}


@router.get("/team/pending_invitations", summary="Invitations not answered yet (owner, admin)")
async def pending_invitations(request: Request, key: Key) -> dict[str, Any]:
    found = await run_in_threadpool(services(request).teams.pending, key)
    return {"status": True, "invitations": [invitation_body(item) for item in found]}


@router.post("/team/send_invitation", summary="Invite: {email, role?}; answers the token to "
                                              "hand to the invitee")
async def send_invitation(request: Request, key: Key) -> dict[str, Any]:
    params = await read_params(request)
    invitation = await run_in_threadpool(lambda: services(request).teams.invite(
        key, text(params, "email"), text(params, "role")))
    return {"status": True, "invitation": invitation_body(invitation)}


@router.post("/team/respond_invitation", summary="Answer an invitation, once: {token, act: "
                                                 "accept|decline}; accepted, the key joins")
async def respond_invitation(request: Request, key: Key) -> dict[str, Any]:
    params = await read_params(request)
    act = (text(params, "act") or "").lower()
    if act not in ("accept", "decline"):
        raise InvalidRequest("act is accept or decline")
    invitation = await run_in_threadpool(lambda: services(request).teams.respond(
        key, text(params, "token"), act == "accept"))
    return {"status": True, "invitation": invitation_body(invitation)}


@router.delete("/team/members/{user_id}", summary="Remove a member (owner, admin)")
async def remove_member(request: Request, key: Key, user_id: int) -> dict[str, Any]:
    await run_in_threadpool(services(request).teams.remove, key, user_id)
    return OK


@router.put("/team/members/{user_id}/role", summary="Set a member's role: {role} (the owner)")
async def set_role(request: Request, key: Key, user_id: int) -> dict[str, Any]:
    params = await read_params(request)
    member = await run_in_threadpool(lambda: services(request).teams.set_role(
        key, user_id, text(params, "role")))
    return {"status": True, "member": member_body(member)}
