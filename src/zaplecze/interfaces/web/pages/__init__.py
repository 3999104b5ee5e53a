"""The server-rendered pages (being built)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the pages' routes and static files to ``app``."""
