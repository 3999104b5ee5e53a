"""Checkpoints: the balances and open lots as they stood at the close of chosen days, so that
reports as of a past date start there instead of from the first trade.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from alembic import op

from zaplecze.store import guards, schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Written once by end of day, never changed (SQLite's guard needs each key). A book that already
# has a journal gets its first checkpoint at its next end of day.
KEYS = {
    "checkpoints": ("business_date",),
    "checkpoint_balances": ("business_date", "basis", "gl_account", "asset"),
    "checkpoint_accounts": ("business_date", "account"),
    "checkpoint_lots": ("business_date", "account", "isin", "position"),
    "late_entries": ("entry_sequence",),
}


def upgrade() -> None:
    bind = op.get_bind()
    schema.metadata.create_all(bind, tables=[schema.metadata.tables[name] for name in KEYS])
    for table, key in KEYS.items():
        for statement in guards.append_only(bind.dialect.name, table, key):
            op.execute(statement)


def downgrade() -> None:
    for table in KEYS:
        op.drop_table(table)
