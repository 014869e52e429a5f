"""What instance sizing checks around the choice of a type, beyond capacities: CPU credits
of burstable candidates, the risk of the first option, and a finding that agrees with it.

- **Credits** (:func:`credit_allowed`): a burstable candidate (T family) is offered only
  if the lookback's demand, scaled up to the level the policy sized on, would have kept
  the service level on it from an empty credit balance (see
  :mod:`~forestream.optimizer.burstable`); a CPU need that fits its vCPUs is not enough.
- **Risk premium** (:func:`safer_choice`): a first option rated high or very high risk is
  replaced by the cheapest one rated at most low risk when that costs at most
  ``RISK_PREMIUM`` (10 %) more.
- **Findings** (:func:`agree_with_options`): a resource whose first option is at least
  ``SAVING_FINDING`` (10 %) cheaper than what it runs is over-provisioned (never
  "Optimized"); one whose first option is not is not over-provisioned.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .burstable import baseline_share, credit_check
from .catalog.view import CatalogView
from .requirements import Demand, Requirements
from .types import InstanceType, Preferences

RISK_PREMIUM = 0.10
#: forestream: the least chance of keeping the service level an option may have
MIN_HOLD = 0.8
SAVING_FINDING = 0.10
#: a first option rated this risk or more is replaced when a safer one costs little more
UNSAFE_RISK = 3
SAFE_RISK = 1


def credit_allowed(types: Sequence[InstanceType], demand: Demand, req: Requirements,
                   view: CatalogView, prefs: Preferences) -> np.ndarray | None:
    """``(R, catalog types)``: False where a burstable candidate would run out of credits
    (None when no resource of the batch has a burstable candidate)."""
    burstable = np.array([t.burstable for t in view.types])
    if prefs.policy != "forestream" or not burstable.any():
        return None  # the baselines' documented rules know no credits
    R = len(types)
    rows = [r for r, t in enumerate(types) if prefs.include_burstable or t.burstable]
    if not rows:
        return None
    allowed = np.ones((R, len(view.types)), dtype=bool)
    columns = np.flatnonzero(burstable)
    rows_a = np.array(rows)
    q = prefs.slo_percentile / 100.0
    u = prefs.slo_utilization / 100.0
    cpu = np.ascontiguousarray(demand.cpu[rows_a])
    with np.errstate(invalid="ignore", divide="ignore"):
        seen = np.nanquantile(cpu, q, axis=1) if cpu.size else np.zeros(0)
        scale = np.where(seen > 0, np.fmax(req.cpu_level[rows_a] / seen, 1.0), 1.0)
    scale = np.nan_to_num(scale, nan=1.0)
    fits = credit_check(cpu * scale[:, None],
                        np.array([view.types[j].vcpu for j in columns], dtype=float),
                        np.array([view.types[j].cpu_speed for j in columns], dtype=float),
                        np.array([baseline_share(view.types[j].name) for j in columns]),
                        q, u)
    allowed[rows_a[:, None], columns[None, :]] = fits
    return allowed


def safer_choice(first_risk: np.ndarray, first_price: np.ndarray, safe_index: np.ndarray,
                 safe_valid: np.ndarray, safe_price: np.ndarray) -> np.ndarray:
    """Rows whose first option should give way to the safer one: rated
    ``UNSAFE_RISK`` or more while the safe option costs at most ``RISK_PREMIUM`` more."""
    return ((first_risk >= UNSAFE_RISK) & safe_valid
            & (safe_price <= first_price * (1 + RISK_PREMIUM) + 1e-12))


def agree_with_options(finding: np.ndarray, reasons: list[list[str]],
                       current_price: np.ndarray, first_price: np.ndarray,
                       ratios: dict[str, np.ndarray], reduced: dict[str, np.ndarray]
                       ) -> tuple[np.ndarray, list[list[str]]]:
    """Findings made consistent with the first option's price (see the module docstring).

    ``ratios`` holds each specification's need over the current capacity, ``reduced``
    whether the first option has less of it than the current type; an over-provisioned
    resource without a reason code gets those of the specifications its first option
    reduces (the loosest one if it reduces none: a cheaper type of the same size).
    """
    finding = finding.copy()
    reasons = [list(r) for r in reasons]
    with np.errstate(invalid="ignore"):
        cheaper = first_price <= current_price * (1 - SAVING_FINDING)
    for r in range(len(finding)):
        if finding[r] in ("Idle", "Underprovisioned"):
            continue
        if cheaper[r]:
            finding[r] = "Overprovisioned"
            if not any(code.endswith("Overprovisioned") for code in reasons[r]):
                specs = [spec for spec, less in reduced.items() if less[r]]
                if not specs:
                    specs = [min(((v[r], spec) for spec, v in ratios.items()
                                  if np.isfinite(v[r])), default=(0.0, "CPU"))[1]]
                reasons[r].extend(f"{spec}Overprovisioned" for spec in specs)
        else:
            finding[r] = "Optimized"
            reasons[r] = [code for code in reasons[r] if not code.endswith("Overprovisioned")]
    return finding, reasons


def expected_saving_cpu(types: Sequence[InstanceType], view: CatalogView, prefs: Preferences,
                        draws: np.ndarray, slo: float, needs: tuple, net: np.ndarray,
                        allowed: np.ndarray | None) -> np.ndarray:
    """forestream: the CPU need that maximizes the expected saving.

    ``draws`` are the bootstrapped CPU levels of the next period; a candidate of capacity
    ``c`` keeps the service level in the share ``P(c)`` of them at or below ``slo * c``,
    and a recommendation that breaks it is rolled back and saves nothing. Among the
    candidates cheaper than the current type that meet every other need and keep the
    service level with at least ``MIN_HOLD`` probability, the one with the highest
    ``P(c) * (price now - price)`` sets the CPU need: where the level is certain this is
    the cheapest type above it; where it is not (bursts on some days only) a cheaper,
    riskier type wins only if it saves enough more. Without such a candidate the need
    stays as the policy set it.
    """
    need_cpu, need_mem, need_gpu, need_gpu_mem = needs
    out = need_cpu.copy()
    groups: dict[str, list[int]] = {}
    for r, t in enumerate(types):
        groups.setdefault(t.name, []).append(r)
    tol = 1 + 1e-9
    ordered = np.sort(draws, axis=1)
    valid = np.isfinite(ordered).sum(axis=1)
    for rows_list in groups.values():
        rows = np.array(rows_list)
        current = types[rows[0]]
        cand = np.flatnonzero(view.candidates(current, prefs.allow_graviton,
                                              prefs.include_burstable))
        cand = cand[view.price[cand] < current.price_per_hour]
        if cand.size == 0:
            continue
        other = ((view.memory[cand] * tol >= need_mem[rows, None])
                 & (view.gpus[cand] * tol >= need_gpu[rows, None])
                 & (view.gpu_memory[cand] * tol >= need_gpu_mem[rows, None])
                 & ((view.network[cand] <= 0) | (view.network[cand] * tol >= net[rows, None])))
        if allowed is not None:
            other &= allowed[rows[:, None], cand[None, :]]
        limit = slo * view.capacity[cand] * tol
        held = np.empty((rows.size, cand.size))
        for i, r in enumerate(rows):
            n = max(int(valid[r]), 1)
            held[i] = np.searchsorted(ordered[r, : valid[r]], limit, side="right") / n
        gain = np.where(other & (held >= MIN_HOLD),
                        held * (current.price_per_hour - view.price[cand])[None, :], -np.inf)
        best = np.argmax(gain, axis=1)
        usable = np.isfinite(gain[np.arange(rows.size), best]) & (valid[rows] > 0)
        chosen = view.capacity[cand][best]
        out[rows[usable]] = np.minimum(chosen[usable], need_cpu[rows[usable]])
    return out
