"""/api/…: reports (being built)."""

from __future__ import annotations

from fastapi import APIRouter

from zaplecze.interfaces.web.api.common import RESPONSES

router = APIRouter(prefix="/api", tags=["reports"], responses=RESPONSES)
