"""Reconciliation: statements received, breaks with their events and comments; the log of
corporate-action announcements and operators' steps.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

from zaplecze.store import schema

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
        if bind.dialect.name == "postgresql":
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
                       f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION zaplecze_refuse_change()")
        else:
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_append_only_{verb.lower()} BEFORE {verb} "
                           f"ON {table} BEGIN SELECT RAISE(ABORT, '{table} are append-only'); "
                           f"END")
            # INSERT OR REPLACE deletes without firing DELETE triggers: refuse a taken key.
            taken = " AND ".join(f"{column} = NEW.{column}" for column in KEYS[table])
            op.execute(f"CREATE TRIGGER {table}_append_only_replace BEFORE INSERT ON {table} "
                       f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {taken}) "
                       f"BEGIN SELECT RAISE(ABORT, '{table} are append-only: this key is "
                       f"taken'); END")


def downgrade() -> None:
    raise NotImplementedError("the records of reconciliation are never dropped by a migration")
