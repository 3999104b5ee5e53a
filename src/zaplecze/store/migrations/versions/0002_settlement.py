"""Settlement: standing instructions, instructions sent, messages received, CSDR penalties.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op

from zaplecze.store import guards, schema

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
        for statement in guards.append_only(bind.dialect.name, table, KEYS[table]):
            op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the records of settlement are never dropped by a migration")
