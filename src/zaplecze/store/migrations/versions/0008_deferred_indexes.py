"""Deferred indexes: the secondary indexes a bulk load drops and builds again at its end, kept
so that a load stopped in between has them built again by the next load or end of day.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from alembic import op

from zaplecze.store import schema

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.metadata.create_all(op.get_bind(), tables=[schema.deferred_indexes])


def downgrade() -> None:
    op.drop_table("deferred_indexes")
