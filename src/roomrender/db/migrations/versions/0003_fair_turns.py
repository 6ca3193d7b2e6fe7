"""Jobs get a turn: keys take turns in the queue within a priority.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("turn", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("ix_jobs_turns", "jobs", ["status", "engine", "priority", "turn"])


def downgrade() -> None:
    op.drop_index("ix_jobs_turns", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("turn")
