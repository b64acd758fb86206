"""Pages of safety_index."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
