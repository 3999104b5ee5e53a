"""Storage: SQLAlchemy Core tables, Alembic migrations, the journal writer, queries."""
