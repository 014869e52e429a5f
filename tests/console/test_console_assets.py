"""The console without its front-end assets (forestream installed without npm): pages
load no script, say which command brings the assets, and their forms still post."""

from __future__ import annotations

import re
from pathlib import Path

from forestream.server.console import assets, pages
from forestream.server.console.views import overview

ROOT = Path(__file__).resolve().parents[2]


def test_without_assets_pages_load_nothing_and_name_the_command_that_builds_them(
        tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "STATIC", tmp_path)  # nothing built there
    chrome = assets.chrome("token")
    assert not chrome.live and chrome.scripts == () and chrome.styles == ()
    body = pages.page("Streams", overview.create_stream_form(chrome), chrome, "streams")
    assert "<script" not in body and "hx-" not in body.replace("htmx", "")
    assert "make console-assets" in body
    target = re.search(r"<code>make ([a-z-]+)</code>", body).group(1)
    assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), re.M)  # it exists
    form = body.split('<form method="post" action="/console/streams"')[1]
    assert 'name="csrf" value="token"' in form  # a plain form that posts with its token


def test_with_assets_pages_load_them_from_this_server_in_order(tmp_path, monkeypatch):
    for name in (*assets.SCRIPTS, *assets.STYLES):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("/* built */")
    monkeypatch.setattr(assets, "STATIC", tmp_path)
    chrome = assets.chrome("token")
    assert chrome.live and chrome.scripts == ("/console/static/vendor/htmx.min.js",
                                              "/console/static/vendor/uPlot.iife.min.js",
                                              "/console/static/console.js")
    body = pages.page("Streams", "", chrome)
    assert "make console-assets" not in body
    assert body.index("htmx.min.js") < body.index("uPlot.iife") < body.index("console.js")
