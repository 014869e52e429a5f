"""The create-application form's parts without a server: a browser's multipart body read
back field by field and file by file, the form read into the manager's arguments, and
what the form says an empty Flink URL means. (The form posted to a real server, and in
a browser: test_console_actions.py, test_console_browser.py.)"""

from __future__ import annotations

import pytest

from forestream.processing.errors import ApplicationError
from forestream.server.console.app_create import read_create_form
from forestream.server.console.forms import Form, Upload, read_form
from forestream.server.console.pages import Chrome
from forestream.server.console.views.application_create import create_form

BOUNDARY = "----WebKitFormBoundaryq1w2e3"


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A body as Chromium sends it: (field, filename or None, bytes) per part."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else "")
        kind = "\r\nContent-Type: application/octet-stream" if filename is not None else ""
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}{kind}\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def test_a_multipart_body_reads_back_its_fields_and_files_byte_for_byte():
    code = "def build(env, properties):\r\n    pass  # é\n".encode()
    body = multipart(("csrf", None, b"abc"), ("code_file", "job.py", code),
                     ("code_text", None, b"line 1\r\nline 2"), ("empty_file", "", b""),
                     ("name", None, "températures".encode()))
    form = read_form(f"multipart/form-data; boundary={BOUNDARY}", body)
    assert form.fields == {"csrf": "abc", "code_text": "line 1\r\nline 2",
                           "name": "températures"}
    assert form.files == {"code_file": Upload("job.py", code)}  # no empty file input


def test_a_url_encoded_body_and_a_body_that_is_not_what_it_says():
    assert read_form("application/x-www-form-urlencoded", b"a=1&b=&a=2").fields == {
        "a": "2", "b": ""}
    assert read_form("multipart/form-data; boundary=x", b"not multipart") == Form()
    assert read_form(None, b"") == Form()


def test_the_form_is_read_into_the_managers_arguments():
    request = read_create_form(Form({
        "name": " temps ", "code_text": "def build(env, properties):\r\n    pass\r\n",
        "runtime": "flink", "flink_url": " http://flink:8081 ", "parallelism": "3",
        "checkpoint_interval": "2.5", "description": " d ", "start": "1",
        "properties": "# inputs\ninput.stream = sensors\n\ninput.start=TRIM_HORIZON\n"
                      "model.threshold=a=b"}))
    assert (request.name, request.start, request.code.entry) == ("temps", True, "job.py")
    assert request.code.files == {"job.py": b"def build(env, properties):\n    pass\n"}
    assert request.options == {
        "runtime": "flink", "flink_url": "http://flink:8081", "parallelism": 3,
        "checkpoint_interval": 2.5, "description": "d",
        "properties": {"input": {"stream": "sensors", "start": "TRIM_HORIZON"},
                       "model": {"threshold": "a=b"}}}
    # blank numbers take the defaults; a URL left in the hidden box is not sent
    request = read_create_form(Form({"name": "x", "code_text": "pass",
                                     "flink_url": "http://stale:8081"}))
    assert request.options == {"runtime": "embedded", "parallelism": 1,
                               "checkpoint_interval": 10.0, "description": "",
                               "properties": {}}
    assert not request.start


@pytest.mark.parametrize("raw, words", [
    ("²", "parallelism '²' must be a whole number from 1 to 64"),
    ("-1", "parallelism '-1' must be a whole number from 1 to 64"),
    ("1.5", "parallelism '1.5' must be a whole number from 1 to 64"),
])
def test_a_parallelism_that_is_no_whole_number_is_refused_naming_the_range(raw, words):
    with pytest.raises(ApplicationError) as refused:
        read_create_form(Form({"name": "x", "code_text": "pass", "parallelism": raw}))
    assert str(refused.value) == words


@pytest.mark.parametrize("flink, words", [
    ({"env": "http://shared:8081", "local": None, "data_dir": "/d"},
     "<code>http://shared:8081</code> (FORESTREAM_FLINK_URL)"),
    ({"env": None, "local": "http://127.0.0.1:40123", "data_dir": "/d"},
     "local cluster, now at <code>http://127.0.0.1:40123</code>"),
    ({"env": None, "local": None, "data_dir": "/srv/forestream"},
     "not running: start it with <code>forestream flink start --data-dir /srv/forestream"),
])
def test_the_form_says_where_an_empty_flink_url_leads(flink, words):
    html = create_form(flink, Chrome("token", (), (), None))
    assert words in html
    assert 'enctype="multipart/form-data"' in html and 'name="csrf" value="token"' in html
    assert 'hx-target="#create-result"' in html
