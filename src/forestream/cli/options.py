"""What the command groups share: ``--endpoint-url``, the REST call, ``KEY=VALUE`` pairs
and JSON output.

:data:`endpoint_option` is every client command's ``--endpoint-url``; :func:`rest`
calls the server's REST API (:mod:`forestream.rest_client`) and turns refusals into clean
CLI errors; :func:`parse_pairs` reads repeated ``KEY=VALUE`` options; :func:`show_json`
prints a result as JSON.
"""

from __future__ import annotations

import json
import os

import click
from rich.console import Console

from forestream.rest_client import RestError, ServerUnreachable, call

console = Console()
err_console = Console(stderr=True)
DEFAULT_ENDPOINT = "http://127.0.0.1:4567"

endpoint_option = click.option(
    "--endpoint-url", default=lambda: os.environ.get("FORESTREAM_ENDPOINT_URL", DEFAULT_ENDPOINT),
    show_default=f"$FORESTREAM_ENDPOINT_URL or {DEFAULT_ENDPOINT}",
    help="The forestream server to talk to.")


def rest(endpoint: str, method: str, path: str, body: dict | None = None, **options):
    """Call the server's REST API (see :func:`forestream.rest_client.call`); refusals and
    an unreachable server become clean CLI errors."""
    try:
        return call(endpoint, method, path, body, **options)
    except RestError as exc:
        raise click.ClickException(exc.summary()) from None
    except ServerUnreachable as exc:
        raise click.ClickException(str(exc)) from None


def parse_pairs(items: tuple[str, ...], option: str, numeric: bool = False) -> dict | None:
    """``KEY=VALUE`` options as a dict (values as numbers when ``numeric``); None if none."""
    out: dict[str, str | float] = {}
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
