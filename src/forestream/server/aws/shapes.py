"""Request validation and wire conversion driven by a botocore JSON service model.

An AWS API's constraints — required members, lengths, patterns, ranges, enums, types —
are data in botocore's machine-readable model, so they are read from it rather than
hand-written per operation. :class:`ServiceShapes` walks an operation's input shape as
AWS's JSON services do, in two kinds of failure:

* a member of the wrong JSON type (a number where a string belongs, a list for a map,
  base64 that does not decode) cannot be deserialised: :class:`SerializationError`, the
  first one found, in AWS's words (``class java.lang.Boolean can not be converted to an
  String``, ``Expected map or null``);
* well-typed values that break the model's constraints are collected, in the model's
  member order, and reported together in AWS's format (``2 validation errors detected:
  Value '' at 'streamName' failed to satisfy constraint: Member must have length greater
  than or equal to 1; ...``), at most :data:`MAX_REPORTED` of them; collections of plain
  values are judged as a whole (``Map keys must satisfy constraint: [...]``), as AWS does.

Values are converted to Python ones on the way (blobs from base64 in JSON, timestamps
from epoch seconds, numbers truncated to the member's integer type as AWS's
``TruncatingBigNumber`` does); :meth:`ServiceShapes.render_output` goes back.

Used for Kinesis (:mod:`.kinesis`, on the hot path: nothing is formatted unless there is
an error) and for the SageMaker control plane (:mod:`.sagemaker`), by the one envelope of
:mod:`.protocol`. Patterns that Python's ``re`` cannot compile (Java's ``\\p{L}``
classes) are not checked here; the package behind the operation checks those values
itself.
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

try:  # a SIMD base64 codec for PutRecords' data (optional: binascii does the same, slower)
    import pybase64
except ImportError:  # pragma: no cover - pybase64 is a dependency; kept working without
    pybase64 = None  # type: ignore[assignment]

MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
#: AWS reports at most this many validation errors (the count says so too).
MAX_REPORTED = 10
#: The longest string value a validation message repeats whole (AWS repeats values whole;
#: the longest Kinesis string, an ARN, is 2048 characters).
ECHO_LIMIT = 2048
#: ... and the longest collection (a map of tags with a 256-character value fits), so
#: that the other errors still fit in a message.
COLLECTION_ECHO_LIMIT = 512
_INTEGER_RANGES = {"integer": (-2**31, 2**31 - 1), "long": (-2**63, 2**63 - 1)}
_TYPE_NAMES = {"integer": "an Integer", "long": "an Long", "float": "an Float",
               "double": "an Double", "string": "an String", "boolean": "an Boolean",
               "blob": "a Blob", "timestamp": "milliseconds since epoch"}
_BASE64_BAD = re.compile(r"[^a-zA-Z0-9+/=]|=[^=]")


class ShapeValidationError(ValueError):
    """The request broke the service model's constraints; the message is AWS's."""


class SerializationError(ValueError):
    """A member could not be deserialised (wrong JSON type, bad base64): AWS's
    ``SerializationException``; the message is AWS's."""


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

    def has_output(self, operation: str) -> bool:
        """Whether ``operation`` answers with a body (AWS's answer to the others is
        empty)."""
        return "output" in self.operations[operation]

    def parse_input(self, operation: str, params: Any, binary: bool = False) -> dict:
        """``params`` checked against ``operation``'s input shape and converted to Python
        values. ``binary``: CBOR bodies (blobs arrive as bytes) rather than JSON (base64).
        Raises :class:`SerializationError` for the first member of the wrong type, else
        ``self.error`` listing the violations."""
        op = self.operations[operation]
        if not isinstance(params, dict):
            raise SerializationError("Start of list found where not expected"
                                     if isinstance(params, list) else "Expected null")
        if "input" not in op:
            return {}
        errors: list[str] = []
        out = _Walk(self.shapes, binary, errors).structure(params, op["input"]["shape"], None)
        if errors:
            count = min(len(errors), MAX_REPORTED)
            raise self.error(f"{count} validation error{'s' if count > 1 else ''} detected: "
                             + "; ".join(errors[:MAX_REPORTED]))
        return out

    def render_output(self, operation: str, result: dict | None, binary: bool = False) -> dict:
        """Python values → wire values for ``operation``'s output shape (members the
        shape does not name are left out)."""
        op = self.operations[operation]
        if "output" not in op or result is None:
            return {}
        return self._render(result, op["output"]["shape"], binary)

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
            member = shape["member"]["shape"]
            flat = _flat_plan(self.shapes, member)
            if flat is not None:  # records of PutRecords / GetRecords: one pass each
                return [_render_flat(v, flat, binary) if v is not None else None
                        for v in value]
            return [self._render(v, member, binary) for v in value]
        if kind == "map":
            return {k: self._render(v, shape["value"]["shape"], binary)
                    for k, v in value.items()}
        if kind == "blob":
            return bytes(value) if binary else base64.b64encode(value).decode("ascii")
        if kind == "timestamp":
            return float(value)
        return value


class _Walk:
    """One request's input walk: converts values, raises the first SerializationError,
    appends validation messages to ``errors`` (formatted only when there is one)."""

    __slots__ = ("shapes", "binary", "errors")

    def __init__(self, shapes: dict, binary: bool, errors: list[str]) -> None:
        self.shapes, self.binary, self.errors = shapes, binary, errors

    def value(self, value: Any, shape_name: str, where: Any) -> Any:
        """``value`` (not None) converted; constraint violations appended."""
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "string":  # inline: the most frequent member kind on the hot path
            if not isinstance(value, str):
                raise SerializationError(_cannot(value, "string"))
            if _breaks(value, shape):
                self.errors.extend(f"Value '{_echo(value)}' at '{where}' failed to satisfy "
                                   f"constraint: {problem}"
                                   for problem in _violations(value, shape))
            return value
        if kind == "structure":
            return self.structure(value, shape_name, where)
        if kind == "list":
            return self._list(value, shape, where)
        if kind == "map":
            return self._map(value, shape, where)
        if kind in ("integer", "long", "float", "double"):
            number = _number(value, kind)
            if _breaks(number, shape):
                self.errors.extend(f"Value '{_java(number)}' at '{where}' failed to satisfy "
                                   f"constraint: {problem}"
                                   for problem in _violations(number, shape))
            return number
        if kind == "boolean":
            if not isinstance(value, bool):
                raise SerializationError(_cannot(value, "boolean"))
            return value
        if kind == "blob":
            data = _blob(value, self.binary)
            if _breaks(data, shape):
                self.errors.extend(f"Value {_java(data)} at '{where}' failed to satisfy "
                                   f"constraint: {problem}"
                                   for problem in _violations(data, shape))
            return data
        if kind == "timestamp":
            return self._timestamp(value, where)
        return value

    def structure(self, value: Any, shape_name: str, where: Any) -> dict:
        if not isinstance(value, dict):
            raise SerializationError("Start of list found where not expected"
                                     if isinstance(value, list) else "Expected null")
        shape = self.shapes[shape_name]
        required = shape.get("required", ())
        out = {}
        for key, spec in shape["members"].items():  # the model's order, as AWS reports
            item = value.get(key)
            if item is None:  # absent, or JSON null: the same to AWS
                if key in required:
                    self.errors.append(f"Value null at '{_Where(where, key)}' failed to "
                                       "satisfy constraint: Member must not be null")
                continue
            out[key] = self.value(item, spec["shape"], _Where(where, key))
        return out  # members the model does not name are ignored, as AWS does

    def _list(self, value: Any, shape: dict, where: Any) -> list:
        if not isinstance(value, list):
            raise SerializationError("Start of structure or map found where not expected."
                                     if isinstance(value, dict) else "Expected list or null")
        member = shape["member"]["shape"]
        self._length(value, shape, where)
        flat = _flat_plan(self.shapes, member)
        if flat is not None:
            fast = _parse_flat(value, flat, self.binary)
            if fast is not None:
                return fast
            # something is off: the full walk below finds it and words it as AWS does
        if self.shapes[member]["type"] in ("structure", "list", "map"):
            out = []
            for i, item in enumerate(value):
                at = _Where(where, index=i)
                if item is None:
                    self.errors.append(f"Value null at '{at}' failed to satisfy constraint: "
                                       "Member must not be null")
                else:
                    out.append(self.value(item, member, at))
            return out
        # a list of plain values is judged as a whole: "Member must satisfy constraint:"
        before = len(self.errors)
        out = [self.value(item, member, where) if item is not None else None
               for item in value]
        if len(self.errors) > before or None in out:
            del self.errors[before:]
            self.errors.append(f"Value '{_java(out)}' at '{where}' failed to satisfy "
                               "constraint: Member must satisfy constraint: "
                               f"[{', '.join(_constraints(self.shapes[member]))}]")
        return out

    def _map(self, value: Any, shape: dict, where: Any) -> dict:
        if not isinstance(value, dict):
            raise SerializationError("Start of list found where not expected"
                                     if isinstance(value, list) else "Expected map or null")
        key_shape, value_shape = shape["key"]["shape"], shape["value"]["shape"]
        before = len(self.errors)
        out = {}
        bad_keys = bad_values = False
        for key, item in value.items():
            mark = len(self.errors)
            key = self.value(key, key_shape, where)
            bad_keys |= len(self.errors) > mark
            mark = len(self.errors)
            if item is None:
                bad_values = True
            else:
                item = self.value(item, value_shape, _Where(where, key=key))
            bad_values |= len(self.errors) > mark
            out[key] = item
        del self.errors[before:]  # judged as a whole, as AWS does
        self._length(out, shape, where)
        shown = f"Value '{_java(out)}' at '{where}' failed to satisfy constraint: "
        if bad_keys:
            self.errors.append(shown + "Map keys must satisfy constraint: "
                               f"[{', '.join(_constraints(self.shapes[key_shape]))}]")
        if bad_values:
            self.errors.append(shown + "Map value must satisfy constraint: "
                               f"[{', '.join(_constraints(self.shapes[value_shape]))}]")
        return out

    def _length(self, value: list | dict, shape: dict, where: Any) -> None:
        if _breaks(value, shape):
            self.errors.extend(f"Value '{_java(value)}' at '{where}' failed to satisfy "
                               f"constraint: {problem}" for problem in _violations(value, shape))

    def _timestamp(self, value: Any, where: Any) -> float | None:
        if isinstance(value, dt.datetime):  # CBOR's tagged dates
            try:
                return value.timestamp()
            except (OverflowError, ValueError, OSError):
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            # epoch seconds a datetime can hold (years 1-9999); NaN and infinities are not
            if (isinstance(value, int) or math.isfinite(value)) and \
                    -MAX_EPOCH_SECONDS <= value <= MAX_EPOCH_SECONDS:
                return float(value)
        else:
            raise SerializationError(_cannot(value, "timestamp"))
        self.errors.append(f"Value '{_java(value)}' at '{where}' failed to satisfy "
                           "constraint: Member must be a timestamp between years 1 and 9999 "
                           "in epoch seconds")
        return None


class _Where:
    """A member's path (``records.1.member.data``), formatted only if an error needs it
    (most requests have none)."""

    __slots__ = ("parent", "member", "index", "key")

    def __init__(self, parent: Any, member: str | None = None, index: int | None = None,
                 key: str | None = None) -> None:
        self.parent, self.member, self.index, self.key = parent, member, index, key

    def __str__(self) -> str:
        parent = str(self.parent) if self.parent is not None else ""
        if self.index is not None:
            return f"{parent}.{self.index + 1}.member"
        if self.key is not None:
            return f"{parent}.{self.key}"
        assert self.member is not None  # every _Where names a member, an index or a key
        member = self.member[:1].lower() + self.member[1:]
        return f"{parent}.{member}" if parent else member

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


# ------------------------------------------------------------- flat structures
# A list of structures whose members are all strings or blobs (PutRecords' entries) is
# the hot path: 500 entries a request. Such an entry is checked and converted in one pass
# over a plan made once per shape; an entry the pass does not accept (a wrong type, a
# broken constraint, anything unusual) sends the whole list through the full walk, which
# raises or words the errors exactly as before. So the pass only ever accepts what the
# full walk accepts, with the same result.

_FLAT_KINDS = ("string", "blob")
#: base64 characters whose value's low 4 (2) bits are 0: the last data character before
#: "==" ("=") may carry no bits that decoding drops (see :func:`_blob`)
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_LOW4_CLEAR = frozenset(_B64[i] for i in range(0, 64, 16))
_LOW2_CLEAR = frozenset(_B64[i] for i in range(0, 64, 4))
_RENDER_KINDS = ("string", "blob", "timestamp", "integer", "long", "boolean", "double",
                 "float")


class _FlatMember:
    __slots__ = ("name", "blob", "required", "low", "high", "enum", "pattern", "render")

    def __init__(self, name: str, shape: dict, required: bool) -> None:
        self.name, self.required = name, required
        self.blob = shape["type"] == "blob"
        self.render = shape["type"] if shape["type"] in ("blob", "timestamp") else None
        self.low, self.high = shape.get("min"), shape.get("max")
        self.enum = frozenset(shape["enum"]) if "enum" in shape else None
        self.pattern = _compiled(shape["pattern"]) if shape.get("pattern") else None


class _FlatPlan:
    __slots__ = ("members", "names", "parse", "rows", "plain")

    def __init__(self, members: list[_FlatMember], parse: bool) -> None:
        self.members, self.parse = members, parse
        self.names = frozenset(m.name for m in members)
        # what _parse_flat reads of each member, as a tuple (cheaper than attributes)
        self.rows = tuple((m.name, m.blob, m.required, m.low, m.high, m.enum, m.pattern)
                          for m in members)
        self.plain = all(m.render is None for m in members)  # rendered as they are


_FLAT_PLANS: dict[tuple[int, str], _FlatPlan | None] = {}


def _flat_plan(shapes: dict, name: str) -> _FlatPlan | None:
    """The one-pass plan of structure shape ``name`` (None: not a flat structure)."""
    key = (id(shapes), name)
    if key not in _FLAT_PLANS:
        shape = shapes[name]
        plan = None
        if shape["type"] == "structure":
            kinds = [shapes[spec["shape"]]["type"] for spec in shape["members"].values()]
            if all(kind in _RENDER_KINDS for kind in kinds):
                required = shape.get("required", ())
                plan = _FlatPlan([_FlatMember(member, shapes[spec["shape"]],
                                              member in required)
                                  for member, spec in shape["members"].items()],
                                 parse=all(kind in _FLAT_KINDS for kind in kinds))
        _FLAT_PLANS[key] = plan
    return _FLAT_PLANS[key]


def _parse_flat(items: list, plan: _FlatPlan, binary: bool) -> list[dict] | None:
    """``items`` converted as the full walk would, or None if any entry needs the full
    walk (to raise or report what is wrong with it)."""
    if not plan.parse:
        return None
    out = []
    rows = plan.rows
    canonical = _canonical_base64
    for item in items:
        if type(item) is not dict:
            return None
        entry = {}
        for name, blob, required, low, high, enum, pattern in rows:
            value = item.get(name)
            if value is None:
                if required:
                    return None
                continue
            if blob:
                if type(value) is str and not binary:
                    value = canonical(value)
                    if value is None:
                        return None
                elif type(value) is not bytes:
                    return None
            elif type(value) is not str or enum is not None and value not in enum or \
                    pattern is not None and pattern.fullmatch(value) is None:
                return None
            if low is not None and len(value) < low or high is not None and len(value) > high:
                return None
            entry[name] = value
        out.append(entry)
    return out


def _canonical_base64_binascii(value: str) -> bytes | None:
    """The bytes ``value`` encodes if it is canonical base64 (what :func:`_blob`
    accepts: strict, no bits dropped by the last character), else None."""
    try:
        data = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    if value and value[-1] == "=" and (value[-3] not in _LOW4_CLEAR if value[-2] == "="
                                       else value[-2] not in _LOW2_CLEAR):
        return None
    return data


def _canonical_base64_simd(value: str) -> bytes | None:
    """As :func:`_canonical_base64_binascii`, with pybase64's SIMD codec (about 4x
    faster on 1 KiB records): canonical means encoding the decoded bytes gives ``value``
    back, which rules out every input the strict decoder refuses."""
    try:
        data = pybase64.b64decode(value)
    except (binascii.Error, ValueError):
        return None
    return data if pybase64.b64encode_as_string(data) == value else None


def _render_flat(value: dict, plan: _FlatPlan, binary: bool) -> dict:
    """``ServiceShapes._render`` of a flat structure, in one pass (none, when ``value``
    is already what would be sent: PutRecords' results)."""
    if plan.plain and value.keys() <= plan.names and None not in value.values():
        return value
    out = {}
    names = plan.names
    for key, item in value.items():
        if item is None or key not in names:
            continue
        out[key] = item
    for m in plan.members:
        if m.render is not None and m.name in out:
            item = out[m.name]
            if m.render == "blob":
                out[m.name] = bytes(item) if binary else base64.b64encode(item).decode("ascii")
            else:
                out[m.name] = float(item)
    return out


# ---------------------------------------------------------------------------- types

def _java_class(value: Any) -> str:
    """The class AWS's (Java) deserialiser names for a JSON value."""
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, (int, float)):
        return "com.amazon.coral.value.json.numbers.TruncatingBigNumber"
    if isinstance(value, str):
        return "java.lang.String"
    if isinstance(value, (bytes, bytearray)):
        return "java.nio.HeapByteBuffer"
    if isinstance(value, dt.datetime):
        return "java.util.Date"
    return type(value).__name__


def _cannot(value: Any, kind: str) -> str:
    """AWS's SerializationException message for ``value`` where a ``kind`` belongs."""
    if isinstance(value, list):
        return "Start of list found where not expected"
    if isinstance(value, dict):
        return "Start of structure or map found where not expected."
    if kind == "boolean" and isinstance(value, str):
        return f"'{_echo(value.upper())}' can not be converted to an Boolean"
    return f"class {_java_class(value)} can not be converted to {_TYPE_NAMES[kind]}"


def _number(value: Any, kind: str) -> int | float:
    """A JSON number as the member's type: integers truncated (toward negative infinity)
    and held to the type's range, as AWS's TruncatingBigNumber is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SerializationError(_cannot(value, kind))
    limits = _INTEGER_RANGES.get(kind)
    if limits is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(_cannot(value, kind))
        value = math.floor(value)
    low, high = limits
    return low if value < low else high if value > high else value


def _blob(value: Any, binary: bool) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str) or binary:
        raise SerializationError(_cannot(value, "blob"))
    try:
        data = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise SerializationError(_base64_problem(value)) from None
    # strict mode takes base64 whose last character carries bits that are dropped
    # ('+/+=' for '+/8='); AWS does not
    if value and base64.b64encode(binascii.a2b_base64(value[-4:]))[-4:] != \
            value[-4:].encode("ascii", "replace"):
        raise SerializationError(_base64_problem(value))
    return data


def _base64_problem(value: str) -> str:
    shown = f"'{_echo(value)}' can not be converted to a Blob: "
    if len(value) % 4:
        return (shown + "Base64 encoded length is expected a multiple of 4 bytes but found: "
                f"{len(value)}")
    bad = _BASE64_BAD.search(value)
    if bad:
        return shown + f"Invalid Base64 character: '{bad.group()[0]}'"
    return shown + "Invalid last non-pad Base64 character dectected"  # sic, AWS's spelling


# ---------------------------------------------------------------------- constraints

def _breaks(value: Any, shape: dict) -> bool:
    """Whether ``value`` breaks a constraint of ``shape`` (the cheap test)."""
    if isinstance(value, (str, bytes, list, dict)):
        length = len(value)
        low, high = shape.get("min"), shape.get("max")
        if low is not None and length < low or high is not None and length > high:
            return True
        if isinstance(value, str):
            if "enum" in shape and value not in shape["enum"]:
                return True
            pattern = shape.get("pattern")
            if pattern:
                compiled = _compiled(pattern)
                return compiled is not None and compiled.fullmatch(value) is None
        return False
    low, high = shape.get("min"), shape.get("max")
    return low is not None and value < low or high is not None and value > high


def _violations(value: Any, shape: dict) -> list[str]:
    """The constraints of ``shape`` that ``value`` breaks, in AWS's words."""
    out = []
    low, high = shape.get("min"), shape.get("max")
    if isinstance(value, (str, bytes, list, dict)):
        length = len(value)
        if low is not None and length < low:
            out.append(f"Member must have length greater than or equal to {low}")
        if high is not None and length > high:
            out.append(f"Member must have length less than or equal to {high}")
        if isinstance(value, str):
            if "enum" in shape and value not in shape["enum"]:
                out.append(_enum_rule(shape))
            pattern = shape.get("pattern")
            compiled = _compiled(pattern) if pattern else None
            if pattern and compiled is not None and compiled.fullmatch(value) is None:
                out.append(_pattern_rule(pattern))
        return out
    if low is not None and value < low:
        out.append(f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        out.append(f"Member must have value less than or equal to {high}")
    return out


def _constraints(shape: dict) -> list[str]:
    """Every constraint of a member shape, as AWS lists them for a collection."""
    out = []
    numeric = shape["type"] in ("integer", "long", "float", "double")
    word = "value" if numeric else "length"
    if "max" in shape:
        out.append(f"Member must have {word} less than or equal to {shape['max']}")
    if "min" in shape:
        out.append(f"Member must have {word} greater than or equal to {shape['min']}")
    if "pattern" in shape:
        out.append(_pattern_rule(shape["pattern"]))
    if "enum" in shape:
        out.append(_enum_rule(shape))
    return out


def _enum_rule(shape: dict) -> str:
    return f"Member must satisfy enum value set: [{', '.join(_hash_order(tuple(shape['enum'])))}]"


@functools.cache
def _hash_order(values: tuple[str, ...]) -> list[str]:
    """Enum values in the order AWS lists them: that of a Java hash table of 16 (or more)
    buckets indexed by each value's ``String.hashCode()``.

    >>> _hash_order(("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON",
    ...              "LATEST", "AT_TIMESTAMP"))
    ['AFTER_SEQUENCE_NUMBER', 'LATEST', 'AT_TIMESTAMP', 'AT_SEQUENCE_NUMBER', 'TRIM_HORIZON']
    """
    buckets = 16
    while len(values) > buckets * 3 // 4:
        buckets *= 2
    return sorted(values, key=lambda value: _java_hash(value) & (buckets - 1))


def _java_hash(text: str) -> int:
    """Java's ``String.hashCode()`` (over UTF-16 code units), as an unsigned 32 bits."""
    code = 0
    units = text.encode("utf-16-be")
    for i in range(0, len(units), 2):
        code = (31 * code + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return code


def _pattern_rule(pattern: str) -> str:
    return f"Member must satisfy regular expression pattern: {_whole_match(pattern)}"


@functools.cache
def _whole_match(pattern: str) -> str:
    """A pattern as AWS prints it: services match patterns whole, so the anchors that
    botocore's models (from Smithy, where patterns search) wrap them in are not shown.

    >>> _whole_match(r"^(0|([1-9]\\d{0,38}))$"), _whole_match("[a-zA-Z0-9_.-]+")
    ('0|([1-9]\\\\d{0,38})', '[a-zA-Z0-9_.-]+')
    """
    if not (pattern.startswith("^") and pattern.endswith("$")) or pattern.endswith("\\$"):
        return pattern
    inner = pattern[1:-1]
    if inner.startswith("(") and inner.endswith(")") and _closes_at_end(inner):
        return inner[1:-1]
    return inner


def _closes_at_end(group: str) -> bool:
    """Whether the parenthesis opening ``group`` is the one that closes it at its end."""
    depth, escaped, in_class = 0, False, False
    for i, char in enumerate(group):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i == len(group) - 1
    return False


# ---------------------------------------------------------------------------- echoes

def _echo(value: str, limit: int = ECHO_LIMIT) -> str:
    """A string as an error message repeats it: whole, up to ``limit`` characters."""
    return value if len(value) <= limit else f"{value[:limit]}…({len(value)} characters)"


def _java(value: Any) -> str:
    """A request value as AWS (Java) prints it in validation messages."""
    if isinstance(value, str):
        return _echo(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, list):
        return _echo("[" + ", ".join(_java(item) for item in value[:100])
                     + (", ..." if len(value) > 100 else "") + "]", COLLECTION_ECHO_LIMIT)
    if isinstance(value, dict):
        items = list(value.items())[:100]
        return _echo("{" + ", ".join(f"{_java(k)}={_java(v)}" for k, v in items)
                     + (", ..." if len(value) > 100 else "") + "}", COLLECTION_ECHO_LIMIT)
    if value is None:
        return "null"
    return str(value)


@functools.cache
def _compiled(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:  # e.g. \p{L}: Java's Unicode classes, which ``re`` lacks
        return None


_canonical_base64 = _canonical_base64_simd if pybase64 is not None else \
    _canonical_base64_binascii
