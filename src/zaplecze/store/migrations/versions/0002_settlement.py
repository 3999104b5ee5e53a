"""Settlement: standing instructions, instructions sent, messages received, CSDR penalties.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op

from zaplecze.store import schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("ssis", "settlement_instructions", "instruction_trades", "settlement_messages",
          "instruction_outcomes", "penalties")

INDEXES = (
    "CREATE INDEX ix_instructions_date ON settlement_instructions (settlement_date)",
)

# The append-only tables with their keys (for SQLite's guard against INSERT OR REPLACE).
KEYS = {"settlement_instructions": ("reference",), "instruction_trades": ("reference", "trade_id"),
        "settlement_messages": ("id",), "instruction_outcomes": ("reference",)}


def upgrade() -> None:
    bind = op.get_bind()
    schema.metadata.create_all(bind, tables=[schema.metadata.tables[name] for name in TABLES])
    for statement in INDEXES:
        op.execute(statement)
    # Instructions and messages received are records of what was said: never changed.
    for table in ("settlement_instructions", "instruction_trades", "settlement_messages",
                  "instruction_outcomes"):
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
    raise NotImplementedError("the records of settlement are never dropped by a migration")
