"""The instance catalog as arrays: the candidate rules (which types a resource may move
to) and the vectorized choice of the cheapest fitting ones, for
:mod:`~forestream.optimizer.recommend` (see its docstring for the rules).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..risk import migration_effort
from ..types import InstanceType, RecommendationError
from . import load_catalog

_COMMON_CATEGORIES = ("General purpose", "Compute optimized", "Memory optimized")
_FAMILY = re.compile(r"^([a-z]+)(\d+)([a-z-]*)$")


@dataclass
class _Choice:
    index: np.ndarray  # (R, k) catalog rows, best first
    valid: np.ndarray  # (R, k) False where fewer than k candidates exist
    fits: np.ndarray  # (R,) whether the first option meets every requirement


class CatalogView:
    """The catalog as arrays, with the candidate rules and a vectorized selection."""

    def __init__(self, catalog) -> None:
        self.catalog = catalog
        self.types: list[InstanceType] = [t for t in catalog]
        self.by_name = {t.name: t for t in self.types}
        self.capacity = np.array([t.vcpu * t.cpu_speed for t in self.types], dtype=float)
        self.memory = np.array([t.memory_gib for t in self.types], dtype=float)
        self.gpus = np.array([t.gpus for t in self.types], dtype=float)
        self.gpu_memory = np.array([t.gpu_memory_gib for t in self.types], dtype=float)
        self.network = np.array([t.network_gbps for t in self.types], dtype=float)
        self.price = np.array([t.price_per_hour for t in self.types], dtype=float)
        self._masks: dict[tuple, np.ndarray] = {}

    @classmethod
    def of(cls, catalog) -> CatalogView:
        if isinstance(catalog, cls):
            return catalog
        if catalog is None:
            catalog = load_catalog()
        return cls(catalog)

    def get(self, name: str) -> InstanceType:
        getter = getattr(self.catalog, "get", None)
        if callable(getter) and not isinstance(self.catalog, dict):
            return getter(name)
        key = name.strip().lower()
        if key not in self.by_name:
            raise RecommendationError(f"unknown instance type {name!r}: not in the catalog")
        return self.by_name[key]

    def candidates(self, current: InstanceType, allow_graviton: bool,
                   include_burstable: bool) -> np.ndarray:
        """Boolean mask of the types this resource may move to (module docstring)."""
        key = (current.name, allow_graviton, include_burstable)
        if key in self._masks:
            return self._masks[key]
        cur_family = _family_parts(current.family)
        mask = np.isfinite(self.price) & (self.price > 0)
        for j, t in enumerate(self.types):
            if not mask[j]:
                continue
            ok = t.current_generation or t.family == current.family
            if current.gpus > 0:
                ok = ok and t.family == current.family
            else:
                parts = _family_parts(t.family)
                category_ok = (t.category in _COMMON_CATEGORIES if current.category in
                               _COMMON_CATEGORIES else t.category == current.category)
                ok = ok and t.gpus == 0 and category_ok
                ok = ok and ("d" in parts[2]) == ("d" in cur_family[2])
                ok = ok and ("flex" in t.family) <= ("flex" in current.family)
                ok = ok and (not t.burstable or include_burstable or current.burstable)
            if t.architecture != current.architecture:
                ok = ok and allow_graviton and t.architecture == "arm64"
            mask[j] = ok
        self._masks[key] = mask
        return mask

    def select(self, types: Sequence[InstanceType], cpu, mem, gpu, gpu_mem, net, k: int, *,
               allow_graviton: bool, include_burstable: bool,
               tolerance: float = 0.0, allowed: np.ndarray | None = None) -> _Choice:
        """The ``k`` cheapest candidates meeting every need, per resource.

        ``allowed`` (resources x catalog types), when given, rules out candidates per
        resource (a burstable type whose credits would run out).

        With ``tolerance`` > 0 the first option is chosen among the candidates that
        meet every need and cost at most ``1 + tolerance`` times the cheapest of them,
        by a key that does not depend on the need (see :meth:`_stable_order`); the
        others follow by price.
        """
        R = len(types)
        index = np.zeros((R, k), dtype=np.int64)
        valid = np.zeros((R, k), dtype=bool)
        fits = np.zeros(R, dtype=bool)
        groups: dict[str, list[int]] = {}
        for r, t in enumerate(types):
            groups.setdefault(t.name, []).append(r)
        for rows in groups.values():
            rows_a = np.array(rows)
            cand = np.flatnonzero(self.candidates(types[rows[0]], allow_graviton,
                                                  include_burstable))
            if cand.size == 0:
                continue
            tol = 1 + 1e-9
            ok = ((self.capacity[cand] * tol >= cpu[rows_a, None])
                  & (self.memory[cand] * tol >= mem[rows_a, None])
                  & (self.gpus[cand] * tol >= gpu[rows_a, None])
                  & (self.gpu_memory[cand] * tol >= gpu_mem[rows_a, None])
                  & ((self.network[cand] <= 0) | (self.network[cand] * tol >= net[rows_a, None])))
            if allowed is not None:
                ok &= allowed[rows_a[:, None], cand[None, :]]
            price = np.where(ok, self.price[cand][None, :], np.inf)
            if tolerance > 0:
                order = self._stable_order(types[rows[0]], cand, ok, price, tolerance)[:, :k]
            else:
                order = np.argsort(price, axis=1, kind="stable")[:, :k]
            chosen_ok = np.take_along_axis(ok, order, axis=1)
            fit = chosen_ok[:, 0]
            if not fit.all():  # nothing fits: offer the closest (largest shortfall ratio)
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = np.minimum.reduce([
                        self.capacity[cand][None, :] / cpu[rows_a, None],
                        self.memory[cand][None, :] / mem[rows_a, None],
                        np.where(gpu[rows_a, None] > 0,
                                 self.gpus[cand][None, :] / gpu[rows_a, None], np.inf)])
                score = np.where(np.isfinite(ratio), -ratio, np.inf) + 1e-9 * (
                    self.price[cand][None, :])
                closest = np.argsort(score, axis=1, kind="stable")[:, :k]
                order = np.where(fit[:, None], order, closest)
                chosen_ok = np.where(fit[:, None], chosen_ok, True)
            n = order.shape[1]
            index[rows_a, :n] = cand[order]
            valid[rows_a, :n] = chosen_ok
            fits[rows_a] = fit
        return _Choice(index, valid, fits)

    def _stable_order(self, current: InstanceType, cand: np.ndarray, ok: np.ndarray,
                      price: np.ndarray, tolerance: float) -> np.ndarray:
        """Candidate order (per row) with near-equal prices ranked stably: among the
        fitting candidates within ``tolerance`` of the cheapest, the current type first,
        then the current family, then the most capacity (reference cores times memory),
        then price and name; every other candidate after them, by price. A requirement
        that moves a little then keeps the same choice unless the cheapest price moves."""
        cheapest = price.min(axis=1, keepdims=True)
        near = ok & (price <= cheapest * (1 + tolerance))
        names = [self.types[j].name for j in cand]
        is_current = np.array([n == current.name for n in names])
        same_family = np.array([self.types[j].family == current.family for j in cand])
        size = -np.log(np.maximum(self.capacity[cand], 1e-12)) - np.log(
            np.maximum(self.memory[cand], 1e-12))
        name_rank = np.argsort(np.argsort(np.array(names, dtype=object), kind="stable"))
        R, C = price.shape

        def full(v):
            return np.broadcast_to(v, (R, C))

        keys = (full(name_rank), price, np.where(near, full(size), 0.0),
                np.where(near, full(~same_family), False), np.where(near, full(~is_current),
                                                                     False), ~near)
        return np.lexsort(keys, axis=1)

    def migration_effort(self, current: InstanceType, option: InstanceType) -> str:
        return migration_effort(current.family, current.architecture, option.family,
                                option.architecture, current.gpus, option.gpus)


def _family_parts(family: str) -> tuple[str, int, str]:
    match = _FAMILY.match(family)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else (family, 0, "")
