"""Pages of requests."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
