"""The book: reference data, source records, the append-only journal and its guards.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

from zaplecze.store import schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The tables this revision made; later revisions create their own.
TABLES = ("instruments", "accounts", "fee_rules", "withholding_rates", "prices", "fx_rates",
          "calendar_overrides", "trades", "cancels", "cash_movements", "corporate_actions",
          "entries", "postings", "balances", "entitlements", "rejections", "eod_runs",
          "ca_applications", "valuations")

INDEXES = (
    "CREATE INDEX ix_entries_pending ON entries (phase, settle_date)",
    "CREATE INDEX ix_entries_target ON entries (target_key)",
    "CREATE INDEX ix_entries_linked ON entries (linked_key)",
    "CREATE INDEX ix_entries_ref ON entries (ref)",
    "CREATE INDEX ix_postings_asset ON postings (asset, gl_account)",
    "CREATE INDEX ix_postings_date ON postings (business_date)",
    "CREATE INDEX ix_trades_isin ON trades (isin, trade_date)",
)

SQLITE_GUARDS = [
    f"CREATE TRIGGER {table}_append_only_{verb.lower()} BEFORE {verb} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} are append-only: correct by a reversing entry'); END"
    for table in ("entries", "postings") for verb in ("UPDATE", "DELETE")
] + [
    # INSERT OR REPLACE would delete the stored row without firing the DELETE trigger (SQLite
    # fires it only with recursive_triggers on): refuse an insert onto an existing key.
    "CREATE TRIGGER entries_append_only_replace BEFORE INSERT ON entries WHEN "
    "EXISTS (SELECT 1 FROM entries WHERE sequence = NEW.sequence) OR "
    "EXISTS (SELECT 1 FROM entries WHERE entry_key = NEW.entry_key) "
    "BEGIN SELECT RAISE(ABORT, 'entries are append-only: this key is taken'); END",
    "CREATE TRIGGER postings_append_only_replace BEFORE INSERT ON postings WHEN "
    "EXISTS (SELECT 1 FROM postings WHERE entry_sequence = NEW.entry_sequence "
    "AND line = NEW.line) "
    "BEGIN SELECT RAISE(ABORT, 'postings are append-only: this key is taken'); END",
]

POSTGRES_GUARDS = [
    """CREATE FUNCTION zaplecze_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION '% are append-only: correct by a reversing entry', TG_TABLE_NAME
           USING ERRCODE = 'integrity_constraint_violation';
       END $$""",
    """CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON entries
       FOR EACH STATEMENT EXECUTE FUNCTION zaplecze_refuse_change()""",
    """CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON postings
       FOR EACH STATEMENT EXECUTE FUNCTION zaplecze_refuse_change()""",
    # Every entry's postings are written in one statement; the statement's rows must balance
    # per entry and asset, or the whole transaction is refused.
    """CREATE FUNCTION zaplecze_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE bad record;
       BEGIN
         SELECT entry_sequence, asset, sum(amount) AS total INTO bad FROM new_postings
           GROUP BY entry_sequence, asset HAVING sum(amount) <> 0 LIMIT 1;
         IF FOUND THEN
           RAISE EXCEPTION 'entry % does not balance in %: postings sum to %',
             bad.entry_sequence, bad.asset, bad.total USING ERRCODE = 'check_violation';
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER postings_balanced AFTER INSERT ON postings
       REFERENCING NEW TABLE AS new_postings
       FOR EACH STATEMENT EXECUTE FUNCTION zaplecze_check_balanced()""",
]


def upgrade() -> None:
    bind = op.get_bind()
    schema.metadata.create_all(bind, tables=[schema.metadata.tables[name] for name in TABLES])
    for statement in INDEXES:
        op.execute(statement)
    guards = POSTGRES_GUARDS if bind.dialect.name == "postgresql" else SQLITE_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the journal is never dropped by a migration")
