"""forestream.server — one ASGI application for every protocol forestream speaks."""

from .app import Server, create_app

__all__ = ["Server", "create_app"]
