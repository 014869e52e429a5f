"""Reading a console form's ``POST`` body: URL-encoded (every form) or
``multipart/form-data`` (the form that creates an application, which can carry a file).

Multipart bodies are read with the standard library's MIME parser (``email``), which
keeps each part's bytes as sent; the request guard has already bounded the body
(64 KiB on console routes), so everything is parsed in memory. A body that is not
what its ``Content-Type`` says reads as an empty form: the CSRF check then refuses it.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class Upload:
    """A file sent with a form: the name the browser gave it and its bytes."""

    filename: str
    data: bytes


@dataclass
class Form:
    """A submitted form: its text fields (a field sent twice keeps its last value) and
    its files, by field name (a file input left empty sends no :class:`Upload`)."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)


def read_form(content_type: str | None, body: bytes) -> Form:
    """The form in ``body``, sent with ``content_type``."""
    if (content_type or "").split(";")[0].strip().lower() == MULTIPART:
        return _multipart(content_type or "", body)
    return Form(dict(parse_qsl(body.decode("utf-8", errors="replace"),
                               keep_blank_values=True)))


def _multipart(content_type: str, body: bytes) -> Form:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", errors="replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    form = Form()
    if not message.is_multipart():
        return form
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            form.fields[name] = data.decode("utf-8", errors="replace")
        elif filename or data:  # an empty file input sends filename="" and no bytes
            form.files[name] = Upload(filename, data)
    return form
