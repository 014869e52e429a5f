"""Request validation and wire conversion driven by a botocore JSON service model.

An AWS API's constraints — required members, lengths, patterns, ranges, enums, types —
are data in botocore's machine-readable model, so they are read from it rather than
hand-written per operation. :class:`ServiceShapes` walks an operation's input shape,
collects every violation in AWS's message format (``1 validation error detected: Value
'-1.0' at 'productionVariants.1.member.initialVariantWeight' failed to satisfy
constraint: ...``) and converts wire values into Python ones (blobs from base64 in JSON,
timestamps from epoch seconds); :meth:`ServiceShapes.render_output` goes back.

Used for Kinesis (:mod:`.kinesis`, on the hot path: nothing is formatted unless there is
an error) and for the SageMaker control plane (:mod:`.sagemaker`), by the one envelope of
:mod:`.protocol`. Patterns that
Python's ``re`` cannot compile (Java's ``\\p{L}`` classes) are not checked here; the
package behind the operation checks those values itself.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import math
import re
from typing import Any

from botocore.loaders import Loader

from forestream.names import ECHO_LIMIT

MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


class ShapeValidationError(ValueError):
    """The request broke the service model's constraints; the message is AWS's."""


class ServiceShapes:
    """One botocore service model (``"kinesis"``, ``"sagemaker"``, ...).

    ``error`` is the exception class raised for invalid input (a subclass the caller's
    protocol already maps to its wire error, or :class:`ShapeValidationError`).
    """

    def __init__(self, service: str, error: type[Exception] = ShapeValidationError) -> None:
        model = Loader().load_service_model(service, "service-2")
        self.model = model
        self.operations: dict = model["operations"]
        self.shapes: dict = model["shapes"]
        self.error = error

    def error_shapes(self) -> list[str]:
        """The names of the model's error shapes (its exceptions), sorted."""
        return sorted(name for name, shape in self.shapes.items() if shape.get("exception"))

    def parse_input(self, operation: str, params: Any, binary: bool = False) -> dict:
        """``params`` checked against ``operation``'s input shape and converted to Python
        values. ``binary``: CBOR bodies (blobs arrive as bytes) rather than JSON (base64).
        Raises ``self.error`` listing every violation."""
        op = self.operations[operation]
        if "input" not in op:
            return {}
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise self.error("request body must be a JSON object")
        errors: list[str] = []
        out = self._convert(params, op["input"]["shape"], None, errors, binary)
        if errors:
            count = len(errors)
            raise self.error(f"{count} validation error{'s' if count > 1 else ''} detected: "
                             + "; ".join(errors))
        return out

    def render_output(self, operation: str, result: dict | None, binary: bool = False) -> dict:
        """Python values → wire values for ``operation``'s output shape (members the
        shape does not name are left out)."""
        op = self.operations[operation]
        if "output" not in op or result is None:
            return {}
        return self._render(result, op["output"]["shape"], binary)

    # ------------------------------------------------------------------ input walk
    def _convert(self, value: Any, shape_name: str, where, errors: list[str],
                 binary: bool) -> Any:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            if not isinstance(value, dict):
                errors.append(f"Value at '{where}' failed to satisfy constraint: Member must "
                              "be an object")
                return {}
            for member in shape.get("required", ()):
                if value.get(member) is None:
                    errors.append(f"Value null at '{_Where(where, member)}' failed to satisfy "
                                  "constraint: Member must not be null")
            members = shape["members"]
            out = {}
            for key, item in value.items():
                spec = members.get(key)
                if spec is None or item is None:
                    continue  # unknown members are ignored, as AWS does
                out[key] = self._convert(item, spec["shape"], _Where(where, key), errors,
                                         binary)
            return out
        if kind == "list":
            if not isinstance(value, list):
                errors.append(f"Value at '{where}' failed to satisfy constraint: Member must "
                              "be a list")
                return []
            _check_length(len(value), shape, where, errors)
            member = shape["member"]["shape"]
            return [self._convert(v, member, _Where(where, index=i), errors, binary)
                    for i, v in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                errors.append(f"Value at '{where}' failed to satisfy constraint: Member must "
                              "be a map")
                return {}
            _check_length(len(value), shape, where, errors)
            return {self._convert(k, shape["key"]["shape"], where, errors, binary):
                    self._convert(v, shape["value"]["shape"], where, errors, binary)
                    for k, v in value.items()}
        if kind == "string":  # inline: the most frequent member kind on the hot path
            if not isinstance(value, str):
                errors.append(f"Value '{_echo(value)}' at '{where}' failed to satisfy constraint: "
                              "Member must be a string")
                return value
            _check_length(len(value), shape, where, errors, shown=value)
            if "enum" in shape and value not in shape["enum"]:
                errors.append(f"Value '{_echo(value)}' at '{where}' failed to satisfy constraint: "
                              f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]")
            pattern = shape.get("pattern")
            if pattern:
                compiled = _compiled(pattern)
                if compiled is not None and compiled.fullmatch(value) is None:
                    errors.append(f"Value '{_echo(value)}' at '{where}' failed to satisfy "
                                  "constraint: Member must satisfy regular expression "
                                  f"pattern: {pattern}")
            return value
        if kind in ("integer", "long", "float", "double"):
            return _check_number(value, shape, where, errors, kind in ("integer", "long"))
        if kind == "boolean":
            if not isinstance(value, bool):
                errors.append(f"Value '{_echo(value)}' at '{where}' failed to satisfy constraint: "
                              "Member must be a boolean")
            return value
        if kind == "blob":
            return _check_blob(value, shape, where, errors, binary)
        if kind == "timestamp":
            return _timestamp(value, where, errors)
        return value

    # ------------------------------------------------------------------ output walk
    def _render(self, value: Any, shape_name: str, binary: bool) -> Any:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if value is None:
            return None
        if kind == "structure":
            return {k: self._render(v, shape["members"][k]["shape"], binary)
                    for k, v in value.items() if v is not None and k in shape["members"]}
        if kind == "list":
            return [self._render(v, shape["member"]["shape"], binary) for v in value]
        if kind == "map":
            return {k: self._render(v, shape["value"]["shape"], binary)
                    for k, v in value.items()}
        if kind == "blob":
            return bytes(value) if binary else base64.b64encode(value).decode("ascii")
        if kind == "timestamp":
            return float(value)
        return value


class _Where:
    """A member's path (``records.1.member.data``), formatted only if an error needs it
    (most requests have none)."""

    __slots__ = ("parent", "member", "index")

    def __init__(self, parent, member: str | None = None, index: int | None = None) -> None:
        self.parent, self.member, self.index = parent, member, index

    def __str__(self) -> str:
        parent = str(self.parent) if self.parent is not None else ""
        if self.index is not None:
            return f"{parent}.{self.index + 1}.member"
        assert self.member is not None  # every _Where names a member or an index
        member = self.member[:1].lower() + self.member[1:]
        return f"{parent}.{member}" if parent else member

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _check_number(value: Any, shape: dict, where, errors: list[str], integral: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
        errors.append(f"Value '{_echo(value)}' at '{where}' failed to satisfy constraint: Member "
                      f"must be {'an integer' if integral else 'a number'}")
        return value
    if "min" in shape and value < shape["min"]:
        errors.append(f"Value '{_echo(value)}' at '{where}' failed to satisfy constraint: Member "
                      f"must have value greater than or equal to {shape['min']}")
    if "max" in shape and value > shape["max"]:
        errors.append(f"Value '{_echo(value)}' at '{where}' failed to satisfy constraint: Member "
                      f"must have value less than or equal to {shape['max']}")
    return value


def _check_blob(value: Any, shape: dict, where, errors: list[str], binary: bool) -> bytes:
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
    _check_length(len(data), shape, where, errors)
    return data


def _timestamp(value: Any, where, errors: list[str]) -> float | None:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # epoch seconds a datetime can hold (years 1-9999); NaN, infinities and CBOR
        # bignums are not timestamps
        if isinstance(value, float) and not math.isfinite(value) or \
                not -MAX_EPOCH_SECONDS <= value <= MAX_EPOCH_SECONDS:
            errors.append(f"Value '{_echo(value)}' at '{where}' failed to satisfy constraint: "
                          "Member must be a timestamp in epoch seconds")
            return None
        return float(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    errors.append(f"Value '{_echo(value)}' at '{where}' failed to satisfy constraint: Member must "
                  "be a timestamp")
    return None


def _echo(value: Any, limit: int = ECHO_LIMIT) -> str:
    """A value as an error message repeats it: cut to ``limit`` characters."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)} characters)"


def _check_length(length: int, shape: dict, where, errors: list[str],
                  shown: Any = None) -> None:
    low, high = shape.get("min"), shape.get("max")
    if (low is None or length >= low) and (high is None or length <= high):
        return  # the common case: nothing to format
    prefix = f"Value '{_echo(shown)}' at '{where}'" if shown is not None else f"Value at '{where}'"
    if low is not None and length < low:
        errors.append(f"{prefix} failed to satisfy constraint: Member must have length "
                      f"greater than or equal to {low}")
    if high is not None and length > high:
        errors.append(f"{prefix} failed to satisfy constraint: Member must have length less "
                      f"than or equal to {high}")


@functools.cache
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:  # e.g. \p{L}: Java's Unicode classes, which ``re`` lacks
        return None
