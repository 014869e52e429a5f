"""The instance catalog: what each EC2 instance type offers and costs in one region.

forestream ships a dated catalog (``data/ec2-catalog-<date>.csv.gz``, built by
``scripts/build_catalog.py`` from Apache Libcloud's EC2 data, Apache-2.0; see
``data/README.md``): 810 types in 35 regions with vCPUs, memory, GPUs and GPU memory,
a sustained network baseline, a relative per-vCPU speed and the Linux on-demand price
per hour. Prices the source lacked are estimated and flagged ``price_estimated``.

:func:`load_catalog` returns a :class:`Catalog` for one region. Look types up by name,
filter them by what a workload needs, and find a type's Graviton (arm64) counterpart:

>>> catalog = load_catalog("us-east-1")
>>> m5 = catalog["m5.xlarge"]
>>> (m5.vcpu, m5.memory_gib, m5.architecture)
(4, 16.0, 'x86_64')
>>> catalog.graviton_equivalent("m5.xlarge").family in ("m7g", "m8g")
True
>>> [t.name for t in catalog.filter(families=["m5"], min_vcpu=4, min_memory_gib=32)][:2]
['m5.2xlarge', 'm5.4xlarge']
>>> catalog["m5.xlarg"]
Traceback (most recent call last):
...
forestream.optimizer.catalog.UnknownInstanceTypeError: unknown instance type 'm5.xlarg' \
in us-east-1; did you mean 'm5.xlarge', 'm5n.xlarge', 'm5d.xlarge'?

Your own catalog (negotiated prices, another cloud) is a CSV or JSON file in the same
shape: CSV with a header row, or JSON as a list of objects (or ``{"instance_types":
[...]}``), optionally gzipped. Required fields: ``name``, ``vcpu``, ``memory_gib``,
``price_per_hour``. Optional: ``region`` (rows of other regions are skipped; without
it every row belongs to whichever region is asked for), ``family`` (default: the part of
the name before the first dot), ``architecture`` (``x86_64`` default, or ``arm64``),
``gpus``, ``gpu_memory_gib``, ``network_gbps``, ``network_burst_gbps``, ``cpu_speed``
(default 1.0), ``burstable``, ``price_estimated``, ``category``, ``processor``,
``current_generation``. Booleans are ``1/0``, ``true/false`` or ``yes/no``.
"""

from __future__ import annotations

import csv
import difflib
import functools
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from forestream import errors

from ..types import InstanceType

DEFAULT_REGION = "us-east-1"
ARCHITECTURES = ("x86_64", "arm64")
REQUIRED_FIELDS = ("name", "vcpu", "memory_gib", "price_per_hour")
OPTIONAL_FIELDS = ("region", "family", "category", "architecture", "gpus", "gpu_memory_gib",
                   "network_gbps", "network_burst_gbps", "cpu_speed", "burstable",
                   "processor", "current_generation", "price_estimated")
DATA_DIR = Path(__file__).with_name("data")


class CatalogError(errors.InvalidInputError, ValueError):
    """A catalog file or argument is not usable; the message says which value and why."""


class UnknownInstanceTypeError(CatalogError):
    """An instance type name that is not in the catalog (the message suggests close ones)."""


def shipped_catalog_path() -> Path:
    """The dated catalog file that ships with forestream (the newest if several)."""
    files = sorted(DATA_DIR.glob("ec2-catalog-*.csv.gz"))
    if not files:
        raise CatalogError(f"no ec2-catalog-*.csv.gz in {DATA_DIR}; the package data is "
                           "missing (reinstall forestream, or pass path=)")
    return files[-1]


def load_catalog(region: str = DEFAULT_REGION, path: str | Path | None = None) -> Catalog:
    """The instance types offered in ``region``, from ``path`` or the shipped catalog.

    Raises :class:`CatalogError` for an unreadable or malformed file and for a region the
    file has no rows for (naming the regions it has).
    """
    if not isinstance(region, str) or not region:
        raise CatalogError(f"region must be a region code such as 'us-east-1', got {region!r}")
    source = Path(path) if path is not None else shipped_catalog_path()
    rows = _read_rows(source.resolve(), source.stat().st_mtime_ns if source.exists() else 0)
    regions = sorted({row["region"] for _, row in rows if row.get("region")})
    if regions:
        selected: Sequence[tuple[int, dict]] = [(number, row) for number, row in rows
                                                if row.get("region") == region]
        if not selected:
            close = difflib.get_close_matches(region, regions, n=3, cutoff=0.5)
            hint = f"; did you mean {_quoted(close)}?" if close else ""
            raise CatalogError(f"region {region!r} is not in {source.name}, which covers "
                               f"{len(regions)} regions: {', '.join(regions)}{hint}")
    else:
        selected = rows
    types = [_instance_type(row, source, number) for number, row in selected]
    return Catalog(types, region=region, source=str(source))


def available_regions(path: str | Path | None = None) -> list[str]:
    """The region codes a catalog file has rows for (empty if it has no region column)."""
    source = Path(path) if path is not None else shipped_catalog_path()
    rows = _read_rows(source.resolve(), source.stat().st_mtime_ns if source.exists() else 0)
    return sorted({row["region"] for _, row in rows if row.get("region")})


class Catalog:
    """The instance types of one region, ordered by price (cheapest first).

    Iterating yields :class:`InstanceType` rows; ``catalog[name]`` and :meth:`get` look
    one up and raise :class:`UnknownInstanceTypeError` with suggestions.
    """

    def __init__(self, types: Iterable[InstanceType], region: str = DEFAULT_REGION,
                 source: str = "") -> None:
        self.region = region
        self.source = source
        self.types = tuple(sorted(types, key=lambda t: (t.price_per_hour, t.vcpu, t.name)))
        self._by_name: dict[str, InstanceType] = {}
        for instance_type in self.types:
            if instance_type.name in self._by_name:
                raise CatalogError(f"instance type {instance_type.name!r} appears twice in "
                                   f"{source or 'the catalog'} for region {region!r}")
            self._by_name[instance_type.name] = instance_type

    def __len__(self) -> int:
        return len(self.types)

    def __iter__(self) -> Iterator[InstanceType]:
        return iter(self.types)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> InstanceType:
        return self.get(name)

    def __repr__(self) -> str:
        return f"Catalog(region={self.region!r}, types={len(self)}, source={self.source!r})"

    def get(self, name: str) -> InstanceType:
        """The type called ``name`` (case and surrounding spaces are ignored)."""
        key = name.strip().lower() if isinstance(name, str) else name
        if key in self._by_name:
            return self._by_name[key]
        close = difflib.get_close_matches(str(key), list(self._by_name), n=3, cutoff=0.6)
        hint = f"; did you mean {_quoted(close)}?" if close else (
            f"; it has {len(self)} types, e.g. {_quoted([t.name for t in self.types[:3]])}")
        raise UnknownInstanceTypeError(f"unknown instance type {name!r} in {self.region}{hint}")

    def families(self) -> list[str]:
        """Family names in this region, sorted."""
        return sorted({t.family for t in self.types})

    def sizes(self, family: str) -> list[InstanceType]:
        """The types of one family, smallest first (by vCPUs, then memory)."""
        members = [t for t in self.types if t.family == family]
        if not members:
            close = difflib.get_close_matches(family, self.families(), n=3, cutoff=0.6)
            hint = f"; did you mean {_quoted(close)}?" if close else ""
            raise CatalogError(f"unknown instance family {family!r} in {self.region}{hint}")
        return sorted(members, key=lambda t: (t.vcpu, t.memory_gib, t.name))

    def filter(self, *, architecture: str | None = None,
               families: Iterable[str] | None = None,
               categories: Iterable[str] | None = None,
               min_vcpu: float = 0, min_memory_gib: float = 0, min_gpus: int = 0,
               gpus: bool | None = None, burstable: bool | None = None,
               current_generation: bool | None = None,
               max_price_per_hour: float | None = None) -> list[InstanceType]:
        """Types meeting every given condition, cheapest first.

        ``architecture`` is ``"x86_64"`` or ``"arm64"``; ``families`` and ``categories``
        are allow-lists (unknown family names raise, since a typo would silently match
        nothing); ``gpus=True`` keeps only GPU types and ``False`` only types without;
        ``min_gpus`` asks for at least that many GPUs.
        """
        if architecture is not None and architecture not in ARCHITECTURES:
            raise CatalogError(f"architecture must be one of {ARCHITECTURES}, "
                               f"got {architecture!r}")
        for label, value in (("min_vcpu", min_vcpu), ("min_memory_gib", min_memory_gib),
                             ("min_gpus", min_gpus)):
            if value < 0:
                raise CatalogError(f"{label} must be >= 0, got {value!r}")
        family_set = None
        if families is not None:
            family_set = {families} if isinstance(families, str) else set(families)
            known = set(self.families())
            unknown = sorted(family_set - known)
            if unknown:
                close = difflib.get_close_matches(unknown[0], sorted(known), n=3, cutoff=0.6)
                hint = f"; did you mean {_quoted(close)}?" if close else ""
                raise CatalogError(f"unknown instance families {unknown} in {self.region}"
                                   f"{hint}")
        category_set = None if categories is None else (
            {categories} if isinstance(categories, str) else set(categories))
        return [t for t in self.types
                if (architecture is None or t.architecture == architecture)
                and (family_set is None or t.family in family_set)
                and (category_set is None or t.category in category_set)
                and t.vcpu >= min_vcpu and t.memory_gib >= min_memory_gib
                and t.gpus >= min_gpus
                and (gpus is None or (t.gpus > 0) == gpus)
                and (burstable is None or t.burstable == burstable)
                and (current_generation is None or t.current_generation == current_generation)
                and (max_price_per_hour is None or t.price_per_hour <= max_price_per_hour)]

    def is_graviton(self, name: str) -> bool:
        """True if ``name`` runs on AWS Graviton (arm64)."""
        return self.get(name).architecture == "arm64"

    def graviton_equivalent(self, name: str) -> InstanceType | None:
        """The newest-generation Graviton type of the same series, size and local-disk
        option as ``name`` (``m5.xlarge`` -> ``m8g.xlarge`` or ``m7g.xlarge``;
        ``c5d.2xlarge`` -> ``c7gd.2xlarge``; ``t3.small`` -> ``t4g.small``), or None when
        this region has none. A type that already is Graviton is its own equivalent.

        Moving to it needs arm64 builds of the workload's software: the catalog cannot
        know that, so callers decide whether to offer it.
        """
        current = self.get(name)
        if current.architecture == "arm64":
            return current
        parsed = _parse_family(current.family)
        if parsed is None:
            return None
        series, _, attributes = parsed
        size = current.name.split(".", 1)[1]
        wanted = set(attributes) & {"d", "n"}
        for needed in (wanted, wanted - {"n"}):
            matches = []
            for t in self.types:
                other = _parse_family(t.family)
                if (t.architecture == "arm64" and other is not None and other[0] == series
                        and set(other[2]) - {"g"} == needed
                        and t.name.split(".", 1)[1] == size):
                    matches.append((other[1], t.name, t))
            if matches:
                return max(matches, key=lambda m: (m[0], m[1]))[2]
        return None


_FAMILY = re.compile(r"^([a-z]+)(\d+)([a-z-]*)$")


def _parse_family(family: str) -> tuple[str, int, str] | None:
    """``"c7gd"`` -> ``("c", 7, "gd")``; None for names like ``u-6tb1``."""
    match = _FAMILY.match(family)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else None


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


@functools.lru_cache(maxsize=8)
def _read_rows(path: Path, mtime_ns: int) -> tuple[tuple[int, dict], ...]:
    """(row number, row) pairs of a CSV/JSON catalog, cached by path and modification
    time so repeated load_catalog() calls parse the shipped file once."""
    if not path.exists():
        raise CatalogError(f"catalog file {str(path)!r} does not exist")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig")
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    is_json = (suffixes[-1:] == [".json"]) if suffixes else text.lstrip()[:1] in "[{"
    if is_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise CatalogError(f"catalog file {path.name!r} is not valid JSON: {error}") from None
        if isinstance(data, dict) and "instance_types" in data:
            data = data["instance_types"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise CatalogError(f"catalog file {path.name!r} must hold a JSON list of objects "
                               "(or {\"instance_types\": [...]})")
        rows = [{str(k).strip(): v for k, v in r.items()} for r in data]
        header = sorted({key for row in rows for key in row})
        first_row = 1
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        rows = list(reader)
        first_row = 2
    unknown = sorted(set(header) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    missing = [f for f in REQUIRED_FIELDS if f not in header]
    if unknown or missing:
        problem = (f"unknown columns {unknown}" if unknown else "") + (
            "; " if unknown and missing else "") + (
            f"missing required columns {missing}" if missing else "")
        raise CatalogError(f"catalog file {path.name!r}: {problem}; accepted columns are "
                           f"{list(REQUIRED_FIELDS)} (required) and {list(OPTIONAL_FIELDS)}")
    return tuple((first_row + i, row) for i, row in enumerate(rows))


_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


def _instance_type(row: dict, source: Path, number: int) -> InstanceType:
    where = f"{source.name} row {number}"

    def number_field(name: str, default: float | None = None, minimum: float = 0.0) -> float:
        value = row.get(name)
        if value is None or value == "":
            if default is None:
                raise CatalogError(f"{where}: {name} is empty; it is required")
            return default
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise CatalogError(f"{where}: {name} must be a number, got {value!r}") from None
        if not result >= minimum:
            raise CatalogError(f"{where}: {name} must be >= {minimum:g}, got {value!r}")
        return result

    def flag(name: str, default: bool) -> bool:
        value = row.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return default if text == "" else False
        raise CatalogError(f"{where}: {name} must be 1/0, true/false or yes/no, got {value!r}")

    name = str(row.get("name") or "").strip().lower()
    if not name:
        raise CatalogError(f"{where}: name is empty; it is required")
    architecture = str(row.get("architecture") or "x86_64").strip()
    if architecture not in ARCHITECTURES:
        raise CatalogError(f"{where}: architecture must be one of {ARCHITECTURES}, "
                           f"got {architecture!r}")
    vcpu = number_field("vcpu", minimum=1)
    if vcpu != int(vcpu):
        raise CatalogError(f"{where}: vcpu must be a whole number, got {row.get('vcpu')!r}")
    network = number_field("network_gbps", 0.0)
    return InstanceType(
        name=name, family=str(row.get("family") or name.split(".")[0]).strip(),
        architecture=architecture, vcpu=int(vcpu),
        memory_gib=number_field("memory_gib", minimum=1e-9),
        price_per_hour=number_field("price_per_hour"),
        gpus=int(number_field("gpus", 0.0)), gpu_memory_gib=number_field("gpu_memory_gib", 0.0),
        network_gbps=network, cpu_speed=number_field("cpu_speed", 1.0, minimum=1e-9),
        burstable=flag("burstable", False), price_estimated=flag("price_estimated", False),
        category=str(row.get("category") or ""), processor=str(row.get("processor") or ""),
        network_burst_gbps=number_field("network_burst_gbps", network),
        current_generation=flag("current_generation", True))
