"""The Luw workspace's answers (boards, personas, the team): the field names the official client reads
(Luvi-io/luw-mcp `src/tools/workspace.ts`: `board.id`, `personas[].id/name/title/profession/knows/
trainings/generations_count/updated_at`, `trainings[].id/slot/image/info/created_at`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from roomrender.accounts.credits import Balance
from roomrender.accounts.teams import Invitation, Member, Usage
from roomrender.api.luw.presenters import UNLIMITED_CREDITS
from roomrender.workspace.boards import Board, Folder, Media
from roomrender.workspace.personas import Persona, Training


def when(epoch: float) -> str:
    """ISO 8601, UTC: sorts as text the way the client sorts `updated_at`."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def folder_body(folder: Folder) -> dict[str, Any]:
    return {"id": folder.id, "board_id": folder.board_id, "parent_id": folder.parent_id,
            "name": folder.name, "created_at": when(folder.created_at)}


def media_body(media: Media) -> dict[str, Any]:
    return {"id": media.id, "board_id": media.board_id, "folder_id": media.folder_id,
            "url": media.url, "control_image": media.control_image, "extras": media.extras,
            "created_at": when(media.created_at)}


def board_body(board: Board, *, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": board.id, "name": board.name,
                            "created_at": when(board.created_at),
                            "updated_at": when(board.updated_at)}
    if full:
        body["folders"] = [folder_body(folder) for folder in board.folders]
        body["media"] = [media_body(media) for media in board.media]
    return body


def training_body(training: Training) -> dict[str, Any]:
    return {"id": training.id, "persona_id": training.persona_id, "slot": training.slot,
            "image": training.image, "info": training.info, "extras": training.extras,
            "created_at": when(training.created_at)}


def persona_body(persona: Persona, *, slim: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": persona.id, "name": persona.name, "title": persona.title, "knows": persona.knows,
        "profession": persona.profession, "generations_count": persona.generations_count,
        "trainings_count": len(persona.trainings), "created_at": when(persona.created_at),
        "updated_at": when(persona.updated_at)}
    if not slim:
        body["trainings"] = [training_body(training) for training in persona.trainings]
    return body


def balance_body(balance: Balance) -> dict[str, Any]:
    unlimited = balance.granted is None
    return {"available": UNLIMITED_CREDITS if unlimited else balance.available,
            "used": balance.used, "granted": None if unlimited else balance.granted,
            "unlimited": unlimited}


def member_body(member: Member) -> dict[str, Any]:
    return {"id": member.id, "user_id": member.id, "name": member.key_name,
            "email": member.email, "role": member.role, "key_prefix": member.key_prefix,
            "joined_at": when(member.joined_at)}


def invitation_body(invitation: Invitation) -> dict[str, Any]:
    return {"id": invitation.id, "email": invitation.email, "role": invitation.role,
            "token": invitation.token, "status": invitation.status,
            "created_at": when(invitation.created_at),
            "answered_at": when(invitation.answered_at) if invitation.answered_at else None}


def usage_body(rows: list[Usage], members: list[Member]) -> dict[str, Any]:
    names = {member.id: member.key_name for member in members}
    per_member: dict[int, int] = {}
    for row in rows:
        per_member[row.member_id] = per_member.get(row.member_id, 0) + row.credits
    return {"status": True, "total_credits": sum(per_member.values()),
            "members": [{"user_id": member.id, "name": member.key_name,
                         "credits": per_member.get(member.id, 0)} for member in members],
            "daily": [{"user_id": row.member_id, "name": names.get(row.member_id),
                       "date": row.day, "credits": row.credits,
                       "generations": row.generations} for row in rows]}
