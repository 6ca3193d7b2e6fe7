"""Luw's workspace: boards (folders, media), personas (their training images) and teams (members,
invitations, one shared credit balance).

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
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("credits_granted", sa.BigInteger, nullable=True),
        sa.Column("credits_used", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "team_members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.Integer, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("joined_at", sa.Float, nullable=False),
    )
    op.create_index("ix_team_members_team_id", "team_members", ["team_id"])
    op.create_table(
        "team_invitations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.Integer, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("invited_by", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("answered_at", sa.Float, nullable=True),
    )
    op.create_index("ix_team_invitations_team_id", "team_invitations", ["team_id"])


def downgrade() -> None:
    for table in ("team_invitations", "team_members", "teams", "persona_trainings", "personas", "board_media", "board_folders", "boards"):
        op.drop_table(table)
