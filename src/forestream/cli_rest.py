"""The REST client the ``forestream models`` and ``optimizer`` commands share.

:func:`rest` calls the server's REST API (signed like every forestream CLI request) and
turns problem details into clean CLI errors; :func:`parse_pairs` reads repeated
``KEY=VALUE`` options; :func:`show_json` prints a result as JSON.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import click
from rich.console import Console

from forestream.access_token import find_token
from forestream.config import client_credentials, client_region

console = Console()
err_console = Console(stderr=True)


def rest(endpoint: str, method: str, path: str, body: dict | None = None, *,
         raw: bytes | None = None, content_type: str = "application/json",
         query: dict | None = None, timeout: float = 600, token: str | None = None):
    """Call the server's REST API; problem details become clean CLI errors. ``token``:
    the server's access token (default: found as :func:`auth_headers` says)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                        else None)
    url = f"{endpoint}{path}"
    if query:
        url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    headers = {"Content-Type": content_type, "X-Forestream-User": _user(),
               **auth_headers(endpoint, method, url, data, content_type, token)}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
            return json.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        try:
            problem = json.loads(exc.read())
            detail = f"{problem.get('title')}: {problem.get('detail')}"
            if exc.code == 401:
                detail += (" (forestream commands send FORESTREAM_TOKEN, else the token of "
                           "the server they find running on that port, else "
                           "$FORESTREAM_DATA_DIR/access-token)")
            if problem.get("version") is not None:
                detail += f" (recorded as version {problem['version']}, status Failed)"
        except ValueError:
            detail = str(exc.reason)
        raise click.ClickException(f"{exc.code} {detail}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach {endpoint} ({exc.reason}): is "
                                   "`forestream server` running?") from None


def parse_pairs(items: tuple[str, ...], option: str, numeric: bool = False) -> dict | None:
    """``KEY=VALUE`` options as a dict (values as numbers when ``numeric``); None if none."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=option)
        if numeric:
            try:
                out[key] = float(value)
            except ValueError:
                raise click.BadParameter(f"{item!r}: the value must be a number",
                                         param_hint=option) from None
        else:
            out[key] = value
    return out or None


def show_json(data) -> None:
    """Print ``data`` as highlighted JSON."""
    console.print_json(json.dumps(data, default=str))


# --------------------------------------------------------------------------- helpers

def auth_headers(endpoint: str, method: str, url: str, data: bytes | None,
                 content_type: str = "application/json",
                 token: str | None = None) -> dict[str, str]:
    """The server's access token (given, or found for ``endpoint``: see
    :func:`forestream.access_token.find_token`), else SigV4 headers when credentials are
    set (a server with credentials accepts either)."""
    headers = {}
    token = token or find_token(endpoint)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    key, secret = client_credentials()
    if key is None or token:
        return headers
    import hashlib

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    region = client_region()
    # the body's hash goes in a signed header: the server can then check a large upload
    # while streaming it to disk
    digest = hashlib.sha256(data or b"").hexdigest()
    request = AWSRequest(method=method, url=url, data=data or b"",
                         headers={"Content-Type": content_type,
                                  "X-Amz-Content-Sha256": digest})
    SigV4Auth(Credentials(key, secret), "forestream", region).add_auth(request)
    return {k: v for k, v in request.headers.items() if k.lower() != "content-type"}


def _user() -> str:
    """Who is asking (recorded as created_by / approval history 'by')."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
