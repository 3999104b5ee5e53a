"""/api/…: settlement (being built)."""

from __future__ import annotations

from fastapi import APIRouter

from zaplecze.interfaces.web.api.common import RESPONSES

router = APIRouter(prefix="/api", tags=["settlement"], responses=RESPONSES)
