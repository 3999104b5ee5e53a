"""The workbench: users, sessions, API tokens, login attempts, desks, the audit trail,
four-eyes requests and decisions, idempotency keys, the exception queue's work items.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from alembic import op

from zaplecze.store import guards, schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("users", "web_sessions", "api_tokens", "login_attempts", "account_desks",
          "audit_trail", "approval_requests", "approval_decisions", "idempotency_keys",
          "work_items", "work_item_comments")

# What was done and decided is a record: never changed (SQLite's guard needs each key).
KEYS = {"audit_trail": ("seq",), "approval_requests": ("request_id",),
        "approval_decisions": ("request_id",), "idempotency_keys": ("key",),
        "work_item_comments": ("id",), "login_attempts": ("id",)}

INDEXES = (
    "CREATE INDEX ix_trades_date ON trades (trade_date)",
)


def upgrade() -> None:
    bind = op.get_bind()
    schema.metadata.create_all(bind, tables=[schema.metadata.tables[name] for name in TABLES])
    for statement in INDEXES:
        op.execute(statement)
    for table, key in KEYS.items():
        for statement in guards.append_only(bind.dialect.name, table, key):
            op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the audit trail is never dropped by a migration")
