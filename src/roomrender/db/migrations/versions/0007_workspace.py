"""Luw's workspace: boards (folders, media) and personas (their training images).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boards",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_boards_owner_id", "boards", ["owner_id"])
    op.create_table(
        "board_folders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("board_id", sa.Integer, nullable=False),
        sa.Column("parent_id", sa.Integer, nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_board_folders_board_id", "board_folders", ["board_id"])
    op.create_table(
        "board_media",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("board_id", sa.Integer, nullable=False),
        sa.Column("folder_id", sa.Integer, nullable=True),
        sa.Column("file_key", sa.String(128), nullable=False),
        sa.Column("control_key", sa.String(128), nullable=True),
        sa.Column("extras", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_board_media_board_id", "board_media", ["board_id"])
    op.create_table(
        "personas",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("knows", sa.Text, nullable=True),
        sa.Column("profession", sa.String(64), nullable=True),
        sa.Column("generations_count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_personas_owner_id", "personas", ["owner_id"])
    op.create_index("ix_personas_profession", "personas", ["profession"])
    op.create_table(
        "persona_trainings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("persona_id", sa.Integer, nullable=False),
        sa.Column("slot", sa.Integer, nullable=True),
        sa.Column("file_key", sa.String(128), nullable=False),
        sa.Column("info", sa.Text, nullable=True),
        sa.Column("extras", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_persona_trainings_persona_id", "persona_trainings", ["persona_id"])


def downgrade() -> None:
    for table in ("persona_trainings", "personas", "board_media", "board_folders", "boards"):
        op.drop_table(table)
