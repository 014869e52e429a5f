"""The console's page frame and the small HTML pieces every view uses.

Every value that came from a user (names, descriptions, tags, log lines, record data)
goes through :func:`text` (``html.escape``); links are built by :func:`link`, which also
percent-encodes the name in the path. Pages load scripts only from this server
(``/console/static/...``: htmx, uPlot and the console's own ``console.js``); when those
assets were never built (:mod:`.assets`), the page says how to get them and works
without live updates and charts. The per-resource views live in :mod:`.views`.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from forestream.models.hosting.endpoints import LATENCY_BUCKETS

GOOD = {"ACTIVE", "RUNNING", "InService", "Ready", "Approved", "OPEN", "optimized"}
BUSY = {"CREATING", "UPDATING", "STARTING", "STOPPING", "DELETING", "Creating", "Updating",
        "Deleting", "Importing", "PendingManualApproval", "under-provisioned"}
BAD = {"FAILED", "Failed", "Rejected", "over-provisioned"}
MAX_HASH = 2**128 - 1
#: The sections of the navigation bar: (path, label, key a page names to be highlighted).
SECTIONS = (("/", "Overview", "overview"), ("/console/streams", "Streams", "streams"),
            ("/console/applications", "Applications", "applications"),
            ("/console/models", "Models", "models"),
            ("/console/endpoints", "Endpoints", "endpoints"),
            ("/console/optimizer", "Optimizer", "optimizer"))
#: htmx swaps error answers too (4xx: the action's message, shown where its answer goes).
HTMX_CONFIG = {"responseHandling": [{"code": "204", "swap": False},
                                    {"code": "[2345]..", "swap": True, "error": False}]}
LIVE_SECONDS = 5  # how often a page's live part is fetched again (htmx polling)


@dataclass(frozen=True)
class Chrome:
    """What the frame of every page needs: the CSRF token its forms carry, and which
    static assets exist (``scripts``: URLs of the scripts to load, in order)."""

    csrf: str
    scripts: tuple[str, ...]
    styles: tuple[str, ...]
    missing_hint: str | None  # why charts and live updates are off, or None

    @property
    def live(self) -> bool:
        return self.missing_hint is None


def page(title: str, body: str, chrome: Chrome | None = None, section: str = "") -> str:
    """A whole document: the navigation bar, a flash area for the answers to actions,
    then ``body`` (already HTML). Without ``chrome`` (the sign-in and error pages of the
    guard) the page has no scripts."""
    head = ""
    attrs = ""
    hint = ""
    if chrome is not None:
        head = "".join(f'<link rel="stylesheet" href="{text(s)}">' for s in chrome.styles) + \
            "".join(f'<script src="{text(s)}" defer></script>' for s in chrome.scripts) + \
            f'<meta name="forestream-csrf" content="{text(chrome.csrf)}">'
        if chrome.live:
            head += f"<meta name=\"htmx-config\" content='{text(json.dumps(HTMX_CONFIG))}'>"
            attrs = f" hx-headers='{text(json.dumps({'X-Forestream-CSRF': chrome.csrf}))}'"
        if chrome.missing_hint:
            hint = f'<p class="hint" id="assets-hint">{chrome.missing_hint}</p>'
    nav = "".join(f'<a href="{path}"{" class=current" if key == section else ""}>{label}</a>'
                  for path, label, key in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>{text(title)} · forestream</title><style>{STYLE}</style>{head}</head>"
            f"<body{attrs}>"
            f'<header><a class="brand" href="/">forestream console</a><nav>{nav}</nav>'
            '<span class="aside"><a href="/metrics">/metrics</a>'
            '<a href="/health">/health</a></span></header>'
            f'<main>{hint}<h1>{text(title)}</h1><div id="flash" aria-live="polite"></div>'
            f"{body}</main></body></html>")


def live_region(url: str, inner: str, chrome: Chrome, *, poll: bool = True,
                region: str = "live") -> str:
    """A part of a page that htmx fetches again every few seconds (``poll``) and at once
    after an action on the page (the ``forestream-changed`` event its answer names)."""
    if not chrome.live:
        return f'<div class="{region}" id="{region}">{inner}</div>'
    every = f"every {LIVE_SECONDS}s, " if poll else ""
    return (f'<div class="{region}" id="{region}" hx-get="{text(url)}" hx-swap="innerHTML" '
            f'hx-trigger="{every}forestream-changed from:body">{inner}</div>')


def action_form(url: str, fields: str, button: str, chrome: Chrome, *,
                danger: bool = False, target: str = "#flash", klass: str = "",
                files: bool = False) -> str:
    """A POST form for an action: a plain form that works without scripts (the server
    redirects back), sent by htmx when it is there (the answer lands in ``target``).
    ``files``: the form carries a file input (sent as ``multipart/form-data``, by the
    browser and by htmx alike)."""
    hx = f' hx-post="{text(url)}" hx-target="{text(target)}" hx-swap="innerHTML"' \
        if chrome.live else ""
    style = " danger" if danger else ""
    encoding = ' enctype="multipart/form-data"' if files else ""
    return (f'<form method="post" action="{text(url)}" class="action {klass}"{encoding}{hx}>'
            f'<input type="hidden" name="csrf" value="{text(chrome.csrf)}">{fields}'
            f'<button type="submit" class="btn{style}">{text(button)}</button></form>')


def flash(message: str, ok: bool = True) -> str:
    """The answer to an action, shown in the page's flash area."""
    kind = "ok" if ok else "error"
    return f'<p class="flash {kind}" role="status">{text(message)}</p>'


def chart(chart_id: str, title: str, unit: str, times: list[float],
          series: list[dict], empty: str = "no data yet") -> str:
    """A chart drawn by ``console.js`` with uPlot from the JSON inside it: ``times`` in
    epoch seconds, ``series`` as ``{"label", "values", "points"?}`` (``points``: markers
    only, no line: anomalies over their input). Without scripts the JSON stays unread."""
    spec = {"title": title, "unit": unit, "x": times, "series": series, "empty": empty}
    data = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    return (f'<figure class="chart" id="{text(chart_id)}" data-chart>'
            f'<figcaption>{text(title)}</figcaption><div class="plot"></div>'
            f'<script type="application/json">{data}</script></figure>')


def not_found(kind: str, name: str, chrome: Chrome | None = None) -> str:
    return page("Not found", f"<p>There is no {text(kind)} named <code>{text(name)}</code>."
                             ' <a href="/">Back to the overview</a>.</p>', chrome)


def login(message: str) -> str:
    """The page a console visitor without the token (or credentials) sees: why, and a
    form that takes the token (the guard checks it and sets the console's cookie)."""
    return page("Sign in", f"<p>{text(message)}.</p>"
                '<form method="post" action="/login"><label>Access token '
                '<input type="password" name="token" autocomplete="off" autofocus '
                'required size="48"></label> <button type="submit">Sign in</button></form>'
                "<p>The token is printed by <code>forestream server</code> when it starts "
                "and stored in its data directory (<code>access-token</code>); "
                "<code>forestream console-url</code> prints a link that signs you in.</p>")


# ------------------------------------------------------------------------ pieces
def text(value) -> str:
    """Escape anything for HTML text or a quoted attribute (None is the empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def path_of(kind: str, name: str) -> str:
    """``/console/{kind}/{name}`` with the name percent-encoded (and "." / ".." kept)."""
    part = quote(str(name), safe="")
    if set(part) <= {"."}:  # "." and ".." are valid names that URL resolution would eat
        part = part.replace(".", "%2E")
    return f"/console/{kind}/{part}"


def link(kind: str, name: str) -> str:
    """A link to the console page of ``/console/{kind}/{name}``."""
    return f'<a href="{text(path_of(kind, name))}">{text(name)}</a>'


def badge(status) -> str:
    kind = "good" if status in GOOD else "busy" if status in BUSY else \
        "bad" if status in BAD else "idle"
    return f'<span class="badge {kind}">{text(status)}</span>'


def badge_or_none(value: str | None) -> str:
    return badge(value) if value and value != "NONE" else "none"


def table(headers: list[str], rows: Iterable[list], empty: str) -> str:
    rows = list(rows)
    if not rows:
        return f'<p class="muted">{text(empty)}</p>'
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    # cells are HTML already: every caller escapes user data with text(), link() or badge()
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def fields(pairs: list[tuple[str, object]]) -> str:
    return "<dl>" + "".join(f"<dt>{text(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def log_block(lines: list[str]) -> str:
    """Log lines, newest first (the latest is what an operator looks for)."""
    if not lines:
        return '<p class="muted">empty</p>'
    return f'<pre class="log">{text(chr(10).join(reversed(lines)))}</pre>'


def when(value) -> str:
    """Epoch seconds or an ISO 8601 string, shown as UTC to the second."""
    if value in (None, ""):
        return "-"
    try:
        if isinstance(value, (int, float)):
            moment = dt.datetime.fromtimestamp(value, dt.timezone.utc)
        else:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return text(value)
    return text(moment.strftime("%Y-%m-%d %H:%M:%S UTC"))


def number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}" if isinstance(value, (int, float)) else text(value)


def size(value) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"


def short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def checkpoint(runtime: dict | None) -> str:
    if not runtime or "checkpoints" not in runtime:
        return "-"
    out = number(runtime["checkpoints"])
    if runtime.get("checkpoint_seconds"):
        out += (f' (last {runtime["checkpoint_seconds"]:.3f} s, '
                f'{size(runtime.get("checkpoint_bytes"))})')
    return out


def percentile(buckets: list[int] | None, count: int, q: float) -> str:
    """The upper bound of the latency bucket holding the q-quantile (buckets are counts
    per bucket, not cumulative); '> last' when it fell beyond the last bound."""
    if not buckets or not count:
        return "-"
    running = 0
    for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
        running += n
        if running >= q * count:
            return f"{1000 * bound:g} ms"
    return f"&gt; {1000 * LATENCY_BUCKETS[-1]:g} ms"


def select(name: str, options: Iterable[str], chosen: str | None = None,
           label: str = "") -> str:
    opts = "".join(f'<option{" selected" if o == chosen else ""}>{text(o)}</option>'
                   for o in options)
    inner = f'<select name="{text(name)}">{opts}</select>'
    return f"<label>{text(label)} {inner}</label>" if label else inner


def field(name: str, label: str, value: str = "", *, placeholder: str = "",
          kind: str = "text", required: bool = False, size_: int = 0, extra: str = "") -> str:
    req = " required" if required else ""
    width = f' size="{size_}"' if size_ else ""
    return (f'<label>{text(label)} <input type="{kind}" name="{text(name)}" '
            f'value="{text(value)}" placeholder="{text(placeholder)}"{req}{width}{extra}>'
            "</label>")


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{background:#1d3b2a;padding:.6em 1.5em;display:flex;gap:1.5em;align-items:baseline;
flex-wrap:wrap}header nav{display:flex;gap:1.1em}header .aside{margin-left:auto;display:flex;
gap:1em}header a{color:#d8efe0;text-decoration:none}header a.brand{font-weight:700;color:#fff}
header a.current{color:#fff;border-bottom:2px solid #8fd3a8}
main{padding:1em 1.5em 3em;max-width:1400px}h1{font-size:1.5em;margin:.3em 0 .6em}
h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #dde1e6;padding-bottom:.2em}
h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #e1e4e8;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}tr:hover td{background:#fafbfc}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
pre{background:#fff;border:1px solid #e1e4e8;padding:.6em;overflow:auto;font-size:12px}
pre.log{max-height:32em;background:#10151c;color:#d6dde6}
.badge{display:inline-block;padding:0 .55em;border-radius:1em;font-size:12px;
font-weight:600;background:#e6e8eb;color:#444}
.good{background:#d5f3de;color:#0f5a2a}.busy{background:#fdf0c4;color:#6b5200}
.bad{background:#fbd9d9;color:#8a1010}
.muted{color:#6a7380}.counts{display:flex;gap:1em;flex-wrap:wrap}
.count{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:.5em 1em;
min-width:8em}.count b{display:block;font-size:1.6em}
dl{display:grid;grid-template-columns:max-content auto;gap:.25em 1.2em;background:#fff;
border:1px solid #e1e4e8;padding:.8em 1em;margin:0}dt{color:#6a7380}dd{margin:0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1em}
figure.chart{background:#fff;border:1px solid #e1e4e8;margin:0;padding:.4em .6em}
figure.chart figcaption{font-weight:600;font-size:13px}.plot{min-height:40px}
.actions{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
form.action{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:.5em .7em;
display:flex;gap:.5em;flex-wrap:wrap;align-items:center}
form.action.wide{flex-basis:100%}form.inline{border:0;padding:0;background:none}
label{color:#3c4554;font-size:13px}input,select,textarea{font:inherit;font-size:13px}
textarea{font:12px ui-monospace,Menlo,Consolas,monospace}
.btn{background:#1d6b3e;color:#fff;border:0;border-radius:4px;padding:.3em .8em;
cursor:pointer}.btn.danger{background:#a3261d}
.flash{padding:.5em .8em;border-radius:4px;margin:.5em 0}.flash.ok{background:#d5f3de}
.flash.error{background:#fbd9d9;color:#6d0d0d}
.hint{background:#fdf0c4;padding:.5em .8em;border-radius:4px}
.record{border-bottom:1px solid #eef1f4}.record pre{margin:.2em 0}
form.create{flex-direction:column;align-items:stretch;max-width:60em}
form.create .row{display:flex;gap:1em;flex-wrap:wrap;align-items:center}
form.create textarea{width:100%;box-sizing:border-box}
form.create input[type=number]{width:6em}form.create .btn{align-self:flex-start}
form.create .flink-only{display:none}
form.create:has(select[name=runtime] option[value=flink]:checked) .flink-only{display:flex}
"""
