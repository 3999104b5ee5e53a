"""Corporate actions: reversals of applied events, market claims and what became of them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from alembic import op

from zaplecze.store import guards, schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("ca_reversals", "market_claims", "market_claim_events")

# What was reversed, raised and settled is a record: never changed (SQLite's guard needs each
# key).
KEYS = {"ca_reversals": ("event_id",), "market_claims": ("claim_id",),
        "market_claim_events": ("id",)}


def upgrade() -> None:
    bind = op.get_bind()
    schema.metadata.create_all(bind, tables=[schema.metadata.tables[name] for name in TABLES])
    for table, key in KEYS.items():
        for statement in guards.append_only(bind.dialect.name, table, key):
            op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("reversals and claims are records: never dropped by a migration")
