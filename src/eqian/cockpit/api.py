"""JSON API of cockpit."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
