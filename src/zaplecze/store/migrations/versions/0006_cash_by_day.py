"""Cash by day: each day's change in every cash balance, so that cash and the trial balance
as of a past date sum days instead of every posting.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from alembic import op

from zaplecze.store import schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# A book that already has a journal gets its days from it: the same sums the journal writer
# keeps from now on (an asset of three letters is a currency; an instrument is an ISIN). A
# posting on both bases ("B") counts on each view.
_FILL = ("INSERT INTO cash_by_day (basis, business_date, gl_account, currency, amount) "
         "SELECT '{view}', business_date, gl_account, asset, SUM(amount) FROM postings "
         "WHERE basis IN ('{view}', 'B') AND LENGTH(asset) = 3 "
         "GROUP BY business_date, gl_account, asset HAVING SUM(amount) <> 0")


def upgrade() -> None:
    bind = op.get_bind()
    schema.metadata.create_all(bind, tables=[schema.cash_by_day])
    for view in ("T", "S"):
        op.execute(_FILL.format(view=view))


def downgrade() -> None:
    op.drop_table("cash_by_day")
