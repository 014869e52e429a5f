"""A client of forestream's own REST API (``/api/v1``), for programs and the CLI.

:func:`call` sends one request with the server's access token (found as
:func:`forestream.access_token.find_token` says, or given), or SigV4-signed with
``FORESTREAM_ACCESS_KEY_ID``/``FORESTREAM_SECRET_ACCESS_KEY`` (or the ``AWS_*``
variables) when no token is known; it returns the parsed JSON answer and raises
:class:`RestError` with the problem details of a refusal, or :class:`ServerUnreachable`.

>>> print(RestError(404, "ResourceNotFoundException", "no analysis 'x'").summary())
404 ResourceNotFoundException: no analysis 'x'
"""

from __future__ import annotations

import getpass
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request

from forestream.access_token import find_token
from forestream.config import client_credentials, client_region


class RestError(Exception):
    """A refusal from the server: HTTP ``status``, the problem's ``title`` and ``detail``,
    and the failed model ``version`` an import recorded (if any)."""

    def __init__(self, status: int, title: str, detail: str,
                 version: int | None = None) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail, self.version = status, title, detail, version

    def summary(self) -> str:
        text = f"{self.status} {self.title}: {self.detail}"
        if self.status == 401:
            text += (" (forestream commands send FORESTREAM_TOKEN, else the token of the "
                     "server they find running on that port, else "
                     "$FORESTREAM_DATA_DIR/access-token)")
        if self.version is not None:
            text += f" (recorded as version {self.version}, status Failed)"
        return text


class ServerUnreachable(Exception):
    """No server answered at the endpoint."""


def call(endpoint: str, method: str, path: str, body: dict | None = None, *,
         raw: bytes | None = None, content_type: str = "application/json",
         query: dict | None = None, timeout: float = 600, token: str | None = None):
    """One REST request; the JSON answer (None for 204)."""
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
            raise RestError(exc.code, str(problem.get("title")), str(problem.get("detail")),
                            problem.get("version")) from None
        except ValueError:
            raise RestError(exc.code, str(exc.reason), "") from None
    except urllib.error.URLError as exc:
        raise ServerUnreachable(f"cannot reach {endpoint} ({exc.reason}): is `forestream "
                                "server` running?") from None


def auth_headers(endpoint: str, method: str, url: str, data: bytes | None,
                 content_type: str = "application/json",
                 token: str | None = None) -> dict[str, str]:
    """The server's access token (given, or found for ``endpoint``), else SigV4 headers
    when credentials are set (a server with credentials accepts either)."""
    token = token or find_token(endpoint)
    if token:
        return {"Authorization": f"Bearer {token}"}
    key, secret = client_credentials()
    if key is None or secret is None:
        return {}
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    # the body's hash goes in a signed header: the server can then check a large upload
    # while streaming it to disk
    digest = hashlib.sha256(data or b"").hexdigest()
    request = AWSRequest(method=method, url=url, data=data or b"",
                         headers={"Content-Type": content_type,
                                  "X-Amz-Content-Sha256": digest})
    SigV4Auth(Credentials(key, secret), "forestream", client_region()).add_auth(request)
    return {k: v for k, v in request.headers.items() if k.lower() != "content-type"}


def _user() -> str:
    """Who is asking (recorded as created_by / approval history 'by')."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
