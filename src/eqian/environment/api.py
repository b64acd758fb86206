"""JSON API of eco-policing under /api/v1/environment."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/environment", tags=["environment"])
