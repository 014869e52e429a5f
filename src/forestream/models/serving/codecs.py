"""Request and response bodies: the three content types the default handlers speak.

SageMaker's framework containers read and write ``application/json``, ``text/csv`` and
``application/x-npy``; so do forestream's default handlers. :func:`decode` turns a
request body into what a model eats — a numpy array of rows for tabular data, a list of
``{feature: value}`` records, or a ``{input name: values}`` mapping for models with
named inputs — and :func:`encode` turns a prediction back into bytes.

JSON bodies may be a list of rows, a single row, ``{"instances": [...]}`` (TensorFlow
Serving's row format) or ``{"inputs": ...}`` (its column format, also used for named
inputs). CSV bodies are rows without a header. An ``.npy`` body is read with
``allow_pickle=False``: a payload can never make the worker unpickle anything.

These functions sit on the per-request path, so they take the short road for the common
case (a JSON list of numbers is one ``orjson.loads`` and one ``np.array``), and cache
the parsing of header values, which repeat from one request to the next.

>>> decode(b'[[1, 2.5], [3, 4]]', "application/json").tolist()
[[1.0, 2.5], [3.0, 4.0]]
>>> decode(b'1,2\\n3,4\\n', "text/csv").shape
(2, 2)
>>> encode(np.array([0.5, 1.5]), "text/csv")
b'0.5\\n1.5\\n'
>>> negotiate_accept("text/html, text/csv;q=0.9")
'text/csv'
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache

import numpy as np
import orjson

from ..errors import ModelInvocationError, UnsupportedContentType

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
CONTENT_TYPES = (JSON, CSV, NPY)

_ACCEPTED = ", ".join(CONTENT_TYPES)
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@lru_cache(maxsize=256)
def media_type(value: str) -> str:
    """The bare media type of a header value: ``"Text/CSV; charset=utf-8"`` → ``"text/csv"``."""
    return value.split(";", 1)[0].strip().lower()


def input_media_type(content_type: str | None) -> str:
    """The request's content type if the default handlers read it, else 415.

    A missing content type is taken as JSON.
    """
    if not content_type:
        return JSON
    media = media_type(content_type)
    if media not in CONTENT_TYPES:
        raise UnsupportedContentType(f"content type {content_type!r} is not accepted; "
                                     f"accepted: {_ACCEPTED}")
    return media


@lru_cache(maxsize=256)
def negotiate_accept(accept: str | None) -> str:
    """The response type to write for an ``Accept`` header, honouring ``q`` weights.

    ``None``, ``*/*`` and ``application/*`` give JSON; ``text/*`` gives CSV. A header
    naming none of the three types raises :class:`UnsupportedContentType` (415).
    """
    if not accept:
        return JSON
    ranked = []
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0:
            ranked.append((-weight, position, media.lower()))
    for _, _, media in sorted(ranked):
        if media in CONTENT_TYPES:
            return media
        if media in ("*/*", "application/*", "*"):
            return JSON
        if media == "text/*":
            return CSV
    raise UnsupportedContentType(f"Accept {accept!r} names no type this model can produce; "
                                 f"accepted: {_ACCEPTED}")


def decode(body: bytes, media: str):
    """Parse a request body of media type ``media`` (one of :data:`CONTENT_TYPES`).

    Returns a numpy array (numeric, or ``object`` when values include text), a list of
    record dicts, or a dict of named inputs. A malformed body raises
    :class:`ModelInvocationError` saying what is wrong with it.
    """
    if not body:
        raise ModelInvocationError(f"the request body is empty; send {media} data")
    if media == JSON:
        return _decode_json(body)
    if media == CSV:
        return _decode_csv(body)
    if media == NPY:
        return _decode_npy(body)
    raise UnsupportedContentType(f"content type {media!r} is not accepted; accepted: {_ACCEPTED}")


def encode(value, media: str) -> bytes:
    """Write a prediction (array, tensor, list, dict, scalar) as ``media`` bytes."""
    if media == JSON:
        return orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS)
    if media == CSV:
        return _encode_csv(value)
    if media == NPY:
        array = to_numpy(value)
        if array.dtype.kind == "O":
            array = array.astype(str)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    raise UnsupportedContentType(f"Accept {media!r} is not one this model can produce; "
                                 f"accepted: {_ACCEPTED}")


def to_numpy(value) -> np.ndarray:
    """A numpy view of a prediction: numpy arrays, torch/TensorFlow tensors, lists, scalars."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach"):  # torch.Tensor
        return value.detach().cpu().numpy()
    if hasattr(value, "numpy"):  # tf.Tensor, EagerTensor
        return np.asarray(value.numpy())
    if hasattr(value, "to_numpy"):  # pandas
        return value.to_numpy()
    if isinstance(value, dict):
        raise ModelInvocationError(f"a prediction that is a dict (keys {sorted(map(str, value))}"
                                   ") cannot be written as rows; ask for application/json")
    return np.asarray(value)


# ------------------------------------------------------------------------ helpers

def _decode_json(body: bytes):
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ModelInvocationError(f"the request body is not valid JSON: {exc}") from exc
    if isinstance(document, dict):
        for key in ("instances", "inputs"):
            if key in document:
                document = document[key]
                break
        else:
            keys = ", ".join(map(repr, list(document)[:10]))
            raise ModelInvocationError("a JSON object body must hold the rows under "
                                       f"'instances' or 'inputs'; got keys {keys}")
        if isinstance(document, dict):
            return document
    if isinstance(document, list):
        if not document:
            raise ModelInvocationError("the JSON body holds no rows (an empty list)")
        if isinstance(document[0], dict):
            return document
    return rows_array(document)


def rows_array(values) -> np.ndarray:
    """Rows parsed from JSON-like values as a numpy array, keeping text as text.

    Numbers give a numeric array; ``null`` among numbers gives NaN; any text keeps every
    value as the Python object it was (a column of strings stays strings).
    """
    try:
        array = np.array(values)
    except ValueError as exc:
        raise ModelInvocationError(f"the rows are not rectangular (rows of different "
                                   f"lengths?): {exc}") from exc
    if array.dtype.kind in "biuf":
        return array
    if array.dtype.kind == "O" and not _holds_text(values):
        try:
            return np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    return np.array(values, dtype=object)


def _holds_text(values) -> bool:
    if isinstance(values, str):
        return True
    if isinstance(values, (list, tuple)):
        return any(_holds_text(value) for value in values)
    return False


def _decode_csv(body: bytes) -> np.ndarray:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelInvocationError(f"the CSV body is not UTF-8 text: {exc}") from exc
    if '"' in text:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    else:
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
    if not rows:
        raise ModelInvocationError("the CSV body holds no rows")
    width = len(rows[0])
    for number, row in enumerate(rows, 1):
        if len(row) != width:
            raise ModelInvocationError(f"CSV line {number} has {len(row)} values; line 1 has "
                                       f"{width}")
    try:
        return np.array([[float(cell) for cell in row] for row in rows])
    except ValueError:
        return np.array([[_csv_cell(cell) for cell in row] for row in rows], dtype=object)


def _csv_cell(cell: str):
    """An empty CSV cell is a missing value (NaN); numbers become floats; the rest stays text."""
    stripped = cell.strip()
    if not stripped:
        return float("nan")
    try:
        return float(stripped)
    except ValueError:
        return cell


def _decode_npy(body: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ModelInvocationError("npy bodies holding Python objects are refused (they "
                                       "would need unpickling); send a numeric or string "
                                       "array") from exc
        raise ModelInvocationError(f"the body is not a valid .npy array: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise ModelInvocationError(f"the body is not a valid .npy array: {exc}") from exc


def _encode_csv(value) -> bytes:
    array = to_numpy(value)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array[:, None]
    elif array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    if array.dtype.kind == "f" and array.dtype != np.float64:
        # str() of a float32 scalar is its shortest round-trip text ("0.1", not
        # "0.10000000149011612"), as in the JSON output.
        lines = [",".join(map(str, row)) for row in array]
    else:
        lines = [",".join(map(str, row)) for row in array.tolist()]
    return ("\n".join(lines) + "\n").encode()


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "detach") or hasattr(value, "numpy"):
        return to_numpy(value).tolist()
    if hasattr(value, "to_dict"):  # pandas
        return value.to_dict(orient="list") if hasattr(value, "columns") else value.to_dict()
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"a {type(value).__name__} cannot be written as JSON")
