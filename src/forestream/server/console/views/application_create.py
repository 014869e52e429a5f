"""The "Create application" form of ``/console/applications``: what ``forestream apps
create`` and ``POST /api/v1/applications`` take, as form fields (read back by
:mod:`..app_create`).

The Flink URL row shows only while the runtime is ``flink`` (CSS ``:has``, no script);
left empty, the application is submitted at each start to ``FORESTREAM_FLINK_URL`` or
to the local cluster of the server's data directory, as from the CLI, and the form says
which of them is there now.
"""

from __future__ import annotations

from forestream.processing.app_config import MAX_PARALLELISM

from ..pages import Chrome, action_form, field, text

CODE_PLACEHOLDER = ("from forestream.processing import kinesis_client\n\n\n"
                    "def build(env, properties):\n"
                    '    env.from_kinesis("sensor-readings", kinesis_client()).print()')


def create_form(flink: dict, chrome: Chrome) -> str:
    """The form, posting to ``/console/applications``; its answer lands under it."""
    rows = [
        # no required/pattern here: the server's refusal names the value and the rule
        _row(field("name", "name", placeholder="temps", size_=28),
             field("description", "description", placeholder="optional", size_=40)),
        _row('<label>code: a .py file <input type="file" name="code_file" '
             'accept=".py,text/x-python"></label>'
             '<span class="muted">or paste it below (one of the two; the form carries at '
             "most 64 KiB: larger code goes with <code>forestream apps create --code</code>)"
             "</span>"),
        f'<textarea name="code_text" rows="8" placeholder="{text(CODE_PLACEHOLDER)}" '
        'aria-label="the job\'s code"></textarea>',
        _row('<label>runtime <select name="runtime">'
             '<option value="embedded" selected>embedded (worker processes of this '
             'server)</option><option value="flink">flink (a job on a Flink cluster)'
             "</option></select></label>",
             field("parallelism", "parallelism", "1", kind="number",
                   extra=f' min="1" max="{MAX_PARALLELISM}"'),
             field("checkpoint_interval", "checkpoint every (s)", "10", kind="number",
                   extra=' min="0.1" max="86400" step="any"'),
             '<label><input type="checkbox" name="start" value="1"> start now</label>'),
        _row(field("flink_url", "Flink REST URL", placeholder=_default_url(flink),
                   size_=36), f'<span class="muted">{_flink_hint(flink)}</span>',
             klass="flink-only"),
        '<label>runtime properties, one <code>GROUP.KEY=VALUE</code> a line'
        '<textarea name="properties" rows="2" placeholder="input.stream=sensor-readings">'
        "</textarea></label>",
    ]
    form = action_form("/console/applications", "".join(rows), "Create application",
                       chrome, target="#create-result", klass="create", files=True)
    return ("<h2>Create an application</h2>"
            '<p class="muted">The same as <code>forestream apps create NAME --code job.py '
            "[--runtime flink --flink URL]</code>: the code defines "
            "<code>build(env, properties)</code>; for <code>flink</code> it is planned now "
            "and refused here if some step cannot run on Flink.</p>"
            f'{form}<div id="create-result" aria-live="polite"></div>')


def _row(*items: str, klass: str = "") -> str:
    return f'<div class="row {klass}">{"".join(items)}</div>'


def _default_url(flink: dict) -> str:
    return flink.get("env") or flink.get("local") or "http://HOST:8081"


def _flink_hint(flink: dict) -> str:
    """What an empty URL means on this server now."""
    if flink.get("env"):
        return (f"empty: <code>{text(flink['env'])}</code> (FORESTREAM_FLINK_URL), "
                "resolved at each start")
    if flink.get("local"):
        return (f"empty: this server's local cluster, now at <code>{text(flink['local'])}"
                "</code>, resolved at each start")
    return ("empty: the local cluster, which is not running: start it with "
            f"<code>forestream flink start --data-dir {text(flink.get('data_dir'))}</code> "
            "before starting the application")
