"""Request validation driven by a botocore JSON service model (any service).

An AWS API's constraints — required members, lengths, patterns, ranges, enums, types —
are data in botocore's machine-readable model, so they are read from it rather than
hand-checked per operation. :class:`ServiceShapes` walks one operation's input shape,
collects every violation in AWS's message format (``1 validation error detected: Value
'-1.0' at 'productionVariants.1.member.initialVariantWeight' failed to satisfy
constraint: ...``) and converts timestamps (epoch seconds on the wire) to floats.

Patterns Python's ``re`` cannot compile (``\\p{L}`` Unicode classes) are skipped; the
package behind the operation checks those values itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any


class ShapeValidationError(Exception):
    """The request broke the service model's constraints; the message is AWS's."""


class ServiceShapes:
    """One botocore service model (e.g. ``"sagemaker"``) and its input validation."""

    def __init__(self, service: str) -> None:
        from botocore.loaders import Loader

        model = Loader().load_service_model(service, "service-2")
        self.metadata = model["metadata"]
        self.operations = model["operations"]
        self.shapes = model["shapes"]

    def parse_input(self, operation: str, params: Any) -> dict:
        """``params`` checked against ``operation``'s input shape, timestamps as floats;
        raises :class:`ShapeValidationError` listing every violation."""
        op = self.operations[operation]
        if "input" not in op:
            return {}
        if not isinstance(params, dict):
            raise ShapeValidationError("request body must be a JSON object")
        errors: list[str] = []
        out = self._convert(params, op["input"]["shape"], "", errors)
        if errors:
            count = len(errors)
            raise ShapeValidationError(f"{count} validation error{'s' if count > 1 else ''} "
                                       "detected: " + "; ".join(errors))
        return out

    def _convert(self, value: Any, shape_name: str, where: str, errors: list[str]) -> Any:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            if not isinstance(value, dict):
                errors.append(f"Value at '{where}' failed to satisfy constraint: Member must "
                              "be an object")
                return {}
            for member in shape.get("required", ()):
                if value.get(member) is None:
                    errors.append(f"Value null at '{_path(where, member)}' failed to satisfy "
                                  "constraint: Member must not be null")
            members = shape["members"]
            return {key: self._convert(item, members[key]["shape"], _path(where, key), errors)
                    for key, item in value.items()
                    if key in members and item is not None}  # unknown members: ignored
        if kind == "list":
            if not isinstance(value, list):
                errors.append(f"Value at '{where}' failed to satisfy constraint: Member must "
                              "be a list")
                return []
            _check_length(len(value), shape, where, errors, None)
            member = shape["member"]["shape"]
            return [self._convert(v, member, f"{where}.{i + 1}.member", errors)
                    for i, v in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                errors.append(f"Value at '{where}' failed to satisfy constraint: Member must "
                              "be a map")
                return {}
            _check_length(len(value), shape, where, errors, None)
            return {self._convert(k, shape["key"]["shape"], where, errors):
                    self._convert(v, shape["value"]["shape"], where, errors)
                    for k, v in value.items()}
        if kind == "string":
            return _check_string(value, shape, where, errors)
        if kind in ("integer", "long", "float", "double"):
            integral = kind in ("integer", "long")
            if isinstance(value, bool) or not isinstance(value, int if integral else
                                                         (int, float)):
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                              f"Member must be {'an integer' if integral else 'a number'}")
                return value
            if "min" in shape and value < shape["min"]:
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                              f"Member must have value greater than or equal to {shape['min']}")
            if "max" in shape and value > shape["max"]:
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                              f"Member must have value less than or equal to {shape['max']}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: "
                              "Member must be a boolean")
            return value
        if kind == "timestamp":
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


def _path(parent: str, member: str) -> str:
    member = member[:1].lower() + member[1:]
    return f"{parent}.{member}" if parent else member


def _check_string(value: Any, shape: dict, where: str, errors: list[str]) -> Any:
    if not isinstance(value, str):
        errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                      "must be a string")
        return value
    _check_length(len(value), shape, where, errors, value)
    if "enum" in shape and value not in shape["enum"]:
        errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                      f"must satisfy enum value set: [{', '.join(shape['enum'])}]")
    pattern = shape.get("pattern")
    compiled = _compiled(pattern) if pattern else None
    if compiled is not None and compiled.fullmatch(value) is None:
        errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member "
                      f"must satisfy regular expression pattern: {pattern}")
    return value


def _check_length(length: int, shape: dict, where: str, errors: list[str], shown) -> None:
    low, high = shape.get("min"), shape.get("max")
    prefix = f"Value '{shown}' at '{where}'" if shown is not None else f"Value at '{where}'"
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
