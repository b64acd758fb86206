"""ASGI entry point for uvicorn: ``eqian.web.main:app``."""

from eqian.web.app import create_app

app = create_app()
