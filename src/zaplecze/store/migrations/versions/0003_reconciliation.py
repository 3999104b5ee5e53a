"""Reconciliation: statements received, breaks with their events and comments; the log of
corporate-action announcements and operators' steps.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

from zaplecze.store import guards, schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("recon_statements", "breaks", "break_events", "break_comments", "ca_event_log")
APPEND_ONLY = ("recon_statements", "break_events", "break_comments", "ca_event_log")

KEYS = {table: ("id",) for table in APPEND_ONLY}  # for SQLite's guard against REPLACE


def upgrade() -> None:
    bind = op.get_bind()
    schema.metadata.create_all(bind, tables=[schema.metadata.tables[name] for name in TABLES])
    # What was received and what happened to a break are records: never changed.
    for table in APPEND_ONLY:
        for statement in guards.append_only(bind.dialect.name, table, KEYS[table]):
            op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the records of reconciliation are never dropped by a migration")
