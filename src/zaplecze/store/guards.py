"""Database guards that make a table append-only, for the migrations that create such tables.

PostgreSQL: a statement trigger refuses UPDATE, DELETE and TRUNCATE (the function
``zaplecze_refuse_change`` comes from revision 0001). SQLite: row triggers refuse UPDATE and
DELETE, and, because INSERT OR REPLACE deletes without firing DELETE triggers, an insert onto a
key already taken.
"""

from __future__ import annotations

from collections.abc import Sequence


def append_only(dialect: str, table: str, key: Sequence[str]) -> list[str]:
    """The statements that make ``table`` (whose unique key is ``key``) append-only."""
    if dialect == "postgresql":
        return [f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON "
                f"{table} FOR EACH STATEMENT EXECUTE FUNCTION zaplecze_refuse_change()"]
    taken = " AND ".join(f"{column} = NEW.{column}" for column in key)
    return [
        *(f"CREATE TRIGGER {table}_append_only_{verb.lower()} BEFORE {verb} ON {table} "
          f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
          for verb in ("UPDATE", "DELETE")),
        f"CREATE TRIGGER {table}_append_only_replace BEFORE INSERT ON {table} WHEN EXISTS "
        f"(SELECT 1 FROM {table} WHERE {taken}) BEGIN SELECT RAISE(ABORT, '{table} are "
        f"append-only: this key is taken'); END",
    ]
