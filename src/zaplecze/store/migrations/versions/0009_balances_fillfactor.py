"""PostgreSQL: the materialised balances leave half of each page free, so that adding to a
balance (every batch adds to most of them) is a heap-only update: the new row version goes on
the same page and no index entry is written. A million-trade load made 1.75 million such
updates; with full pages each wrote an index entry and left the table to grow by a dead row
(this server runs without autovacuum). SQLite updates in place and has no such setting.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BALANCES_FILLFACTOR = 50  # per cent of a page filled by inserts


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE balances SET (fillfactor = {BALANCES_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE balances RESET (fillfactor)")
