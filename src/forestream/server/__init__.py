"""forestream.server — one ASGI application for every protocol forestream speaks."""

from .app import create_app

__all__ = ["create_app"]
