"""The console's static files: its own ``console.js`` (committed) and the front-end
libraries it draws with, htmx and uPlot, installed from npm by the project's build.

``make console-assets`` runs ``npm ci`` in ``console/frontend/`` (the versions are pinned
by its ``package-lock.json``) and copies the libraries' distributed files into
``console/static/vendor/`` (git-ignored). Nothing is fetched from a CDN when a page
loads. Where those files are missing (forestream installed without npm), pages load no
scripts, say how to get them, and work as plain pages: forms post and come back.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from .pages import Chrome

STATIC = Path(__file__).with_name("static")
VENDOR = STATIC / "vendor"
#: What the pages load, in order: (file under static/, kind).
SCRIPTS = ("vendor/htmx.min.js", "vendor/uPlot.iife.min.js", "console.js")
STYLES = ("vendor/uPlot.min.css",)
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
PREFIX = "/console/static/"
BUILD_HINT = ("Live updates and charts are off: this installation has no console assets "
              "(htmx and uPlot, from npm). In a forestream source checkout run "
              "<code>make console-assets</code> (it needs npm), then reload. Everything "
              "else works: forms post and come back, and a reload shows the newest data.")


def chrome(csrf: str) -> Chrome:
    """The frame's settings for a page: scripts when every asset is there, else a hint."""
    missing = [name for name in (*SCRIPTS, *STYLES) if not (STATIC / name).is_file()]
    if missing:
        return Chrome(csrf, (), (), BUILD_HINT)
    return Chrome(csrf, tuple(PREFIX + s for s in SCRIPTS), tuple(PREFIX + s for s in STYLES),
                  None)


async def serve(request: Request) -> Response:
    """``GET /console/static/{path}``: only the files the pages name (no directory
    listing, no path outside ``static/``)."""
    name = request.path_params["path"]
    if name not in SCRIPTS and name not in STYLES:
        return PlainTextResponse(f"no console asset named {name!r}", status_code=404)
    path = STATIC / name
    if not path.is_file():
        return PlainTextResponse(f"{name} is not built: run `make console-assets`",
                                 status_code=404)
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix],
                        headers={"Cache-Control": "private, max-age=300"})
