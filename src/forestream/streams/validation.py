"""Input validation and wire-shape conversion driven by botocore's Kinesis service model.

The Kinesis API's constraints (required members, lengths, patterns, ranges, enums) are
data in botocore's machine-readable model, so they are read from it rather than
hand-written per operation. The same walk converts wire values into Python ones (blobs
from base64 in JSON, timestamps from epoch seconds) and back for responses.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
from typing import Any

from .errors import InvalidArgumentError, ValidationError


@functools.cache
def service_model() -> dict:
    from botocore.loaders import Loader

    return Loader().load_service_model("kinesis", "service-2")


def operation_names() -> list[str]:
    return sorted(service_model()["operations"])


def parse_input(operation: str, params: Any, binary: bool) -> dict:
    """Validate ``params`` for ``operation`` and return them converted to Python values.

    ``binary`` is True for CBOR bodies (blobs arrive as bytes), False for JSON (base64).
    Raises :class:`ValidationError` with AWS's message format.
    """
    model = service_model()
    op = model["operations"].get(operation)
    if op is None:
        raise InvalidArgumentError(f"unknown operation {operation!r}")
    if "input" not in op:
        return {}
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValidationError("request body must be a JSON object")
    errors: list[str] = []
    out = _convert(params, op["input"]["shape"], None, errors, binary)
    if errors:
        count = len(errors)
        raise ValidationError(f"{count} validation error{'s' if count > 1 else ''} detected: "
                              + "; ".join(errors))
    return out


def render_output(operation: str, result: dict, binary: bool) -> dict:
    """Python values → wire values for ``operation``'s output shape."""
    op = service_model()["operations"][operation]
    if "output" not in op or result is None:
        return {}
    return _render(result, op["output"]["shape"], binary)


@functools.cache
def _shapes() -> dict:
    return service_model()["shapes"]


def _shape(name: str) -> dict:
    return _shapes()[name]


def _path(parent: str, member: str) -> str:
    member = member[:1].lower() + member[1:]
    return f"{parent}.{member}" if parent else member


class _Where:
    """A member's path, formatted only if an error needs it (most requests have none)."""

    __slots__ = ("parent", "member", "index")

    def __init__(self, parent, member: str | None = None, index: int | None = None) -> None:
        self.parent, self.member, self.index = parent, member, index

    def __str__(self) -> str:
        parent = str(self.parent) if self.parent is not None else ""
        if self.index is not None:
            return f"{parent}.{self.index + 1}"
        return _path(parent, self.member) if self.member else parent

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _convert(value: Any, shape_name: str, where: str, errors: list[str], binary: bool) -> Any:
    shape = _shapes()[shape_name]
    kind = shape["type"]
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be an "
                          "object")
            return None
        out = {}
        for member in shape.get("required", ()):
            if value.get(member) is None:
                errors.append(f"Value null at '{_Where(where, member)}' failed to satisfy "
                              "constraint: Member must not be null")
        members = shape["members"]
        for key, item in value.items():
            spec = members.get(key)
            if spec is None or item is None:
                continue  # unknown members are ignored, as AWS does
            out[key] = _convert(item, spec["shape"], _Where(where, key), errors, binary)
        return out
    if kind == "list":
        if not isinstance(value, list):
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be a "
                          "list")
            return []
        _check_length(len(value), shape, where, errors, "have length")
        member = shape["member"]["shape"]
        return [_convert(v, member, _Where(where, index=i), errors, binary)
                for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be a "
                          "map")
            return {}
        _check_length(len(value), shape, where, errors, "have length")
        return {_convert(k, shape["key"]["shape"], where, errors, binary):
                _convert(v, shape["value"]["shape"], where, errors, binary)
                for k, v in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                          "must be a string")
            return value
        _check_length(len(value), shape, where, errors, "have length", shown=value)
        if "enum" in shape and value not in shape["enum"]:
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                          f"must satisfy enum value set: [{', '.join(shape['enum'])}]")
        pattern = shape.get("pattern")
        if pattern and not _full_match(pattern, value):
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                          f"must satisfy regular expression pattern: {pattern}")
        return value
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                          "must be an integer")
            return value
        if "min" in shape and value < shape["min"]:
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                          f"must have value greater than or equal to {shape['min']}")
        if "max" in shape and value > shape["max"]:
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                          f"must have value less than or equal to {shape['max']}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                          "must be a boolean")
        return value
    if kind == "blob":
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, str) and not binary:
            try:
                data = binascii.a2b_base64(value, strict_mode=True)
            except (binascii.Error, ValueError):
                errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be "
                              "base64-encoded")
                return b""
        else:
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must be a "
                          "blob")
            return b""
        _check_length(len(data), shape, where, errors, "have length")
        return data
    if kind == "timestamp":
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
        errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                      "must be a timestamp")
        return None
    return value


def _check_length(length: int, shape: dict, where, errors: list[str], what: str,
                  shown: Any = None) -> None:
    low, high = shape.get("min"), shape.get("max")
    if (low is None or length >= low) and (high is None or length <= high):
        return  # the common case: nothing to format
    prefix = f"Value '{shown}' at '{where}'" if shown is not None else f"Value at '{where}'"
    if low is not None and length < low:
        errors.append(f"{prefix} failed to satisfy constraint: Member must {what} greater "
                      f"than or equal to {low}")
    if high is not None and length > high:
        errors.append(f"{prefix} failed to satisfy constraint: Member must {what} less than "
                      f"or equal to {high}")


@functools.cache
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _full_match(pattern: str, value: str) -> bool:
    return _compiled(pattern).fullmatch(value) is not None


def _render(value: Any, shape_name: str, binary: bool) -> Any:
    shape = _shape(shape_name)
    kind = shape["type"]
    if value is None:
        return None
    if kind == "structure":
        return {k: _render(v, shape["members"][k]["shape"], binary)
                for k, v in value.items() if v is not None and k in shape["members"]}
    if kind == "list":
        return [_render(v, shape["member"]["shape"], binary) for v in value]
    if kind == "map":
        return {k: _render(v, shape["value"]["shape"], binary) for k, v in value.items()}
    if kind == "blob":
        return bytes(value) if binary else base64.b64encode(value).decode("ascii")
    if kind == "timestamp":
        return float(value)
    return value
