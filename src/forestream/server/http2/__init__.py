"""HTTP/2 for every port of ``forestream server``: :class:`Http2Connection` serves the
ASGI application over one HTTP/2 connection (see :mod:`.connection`), one
:class:`Http2Stream` per request (:mod:`.stream`)."""

from .connection import PREFACE, Http2Connection
from .stream import Http2Stream, UpgradedRequest

__all__ = ["PREFACE", "Http2Connection", "Http2Stream", "UpgradedRequest"]
