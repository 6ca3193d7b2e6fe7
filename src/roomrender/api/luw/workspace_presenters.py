"""The Luw workspace's answers (boards, personas): the field names the official client reads
(Luvi-io/luw-mcp `src/tools/workspace.ts`: `board.id`, `personas[].id/name/title/profession/knows/
trainings/generations_count/updated_at`, `trainings[].id/slot/image/info/created_at`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
