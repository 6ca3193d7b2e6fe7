"""Jobs get the version of their request: a worker claims only the versions it knows.

Rows written before are version 1 (as are rows an API of the previous release writes while the
upgrade rolls out: it does not know the column). The claims' index gains the version, so a claim
skips the jobs of a newer version than its worker's within the index.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("request_version", sa.Integer, nullable=False,
                                   server_default="1"))
    op.create_index("ix_jobs_claims", "jobs",
                    ["status", "engine", "priority", "turn", "request_version"])
    op.drop_index("ix_jobs_turns", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_turns", "jobs", ["status", "engine", "priority", "turn"])
    op.drop_index("ix_jobs_claims", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("request_version")
