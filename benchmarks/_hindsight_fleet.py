"""An evaluation fleet for right-sizing, written apart from ``forestream.optimizer.synthetic``.

The fleet imitates what a real EC2 estate looks like over four weeks of 5-minute
CloudWatch samples (CPU as a 5-minute average, memory in use), so that a recommender
can be fitted on the first ``seen_days`` and judged on the rest against the *true*
demand. Nothing here is shared with the optimizer's own generator: shapes, noise,
load levels and type mix are drawn by other code with other distributions.

Each instance gets a current type (general purpose, compute, memory optimized or
burstable; large to 4xlarge), a *shape* and a *load level*:

- ``idle``: a few percent of CPU, flat memory;
- ``steady``: a level with slow random drift and 5-minute jitter;
- ``diurnal``: a daily cycle (peak hour, width and amplitude drawn), weekends lower;
- ``bursty``: a low base with bursts arriving at random (Poisson), lasting minutes to
  an hour, heights drawn from a heavy-tailed (Pareto) law;
- ``cron``: every hour (or every 15 minutes), one or two samples of a job at a
  multiple of the base;
- ``growth``: a diurnal or steady load growing 10-50 % over the four weeks;
- ``leak``: memory rising linearly between restarts (a sawtooth; each cycle's peak
  varies a little), CPU steady or diurnal;
- ``deploy``: one or two lasting steps of the level inside the seen days;
- ``batch``: a nightly batch job (1-3 hours at a multiple of the base) and, on some,
  a weekly backup;
- ``saturated``: demand above the current capacity (the measured CPU is capped at
  100 %).

Overlays, drawn independently: one-off incidents (a quarter of an hour to four hours,
an hour and a quarter on average, of extra load, anywhere in the four weeks), gaps
(missing samples in the seen days), and for ``regime_share`` of the instances a change
of level after the seen days that no forecast could foresee (``regime`` is True for them).

CPU demand is in *reference cores* (vCPUs times the catalog's ``cpu_speed``): what a
type of capacity ``c`` serves at ``demand / c`` utilization. Memory demand is in GiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forestream.optimizer.types import Resource, UtilizationHistory

STEP = 300
PER_HOUR = 12
PER_DAY = 24 * PER_HOUR
START = 1_767_225_600  # 2026-01-01T00:00:00Z, a Thursday

SHAPES = {"idle": 0.09, "steady": 0.13, "diurnal": 0.19, "bursty": 0.11, "cron": 0.07,
          "growth": 0.08, "leak": 0.10, "deploy": 0.07, "batch": 0.12, "saturated": 0.04}
FAMILIES = {  # family: (weight, sizes)
    "m5": (0.14, ("large", "xlarge", "2xlarge", "4xlarge")),
    "m6i": (0.12, ("large", "xlarge", "2xlarge", "4xlarge")),
    "m6a": (0.06, ("large", "xlarge", "2xlarge", "4xlarge")),
    "c5": (0.10, ("large", "xlarge", "2xlarge", "4xlarge")),
    "c6i": (0.10, ("large", "xlarge", "2xlarge", "4xlarge")),
    "r5": (0.10, ("large", "xlarge", "2xlarge", "4xlarge")),
    "r6i": (0.12, ("large", "xlarge", "2xlarge", "4xlarge")),
    "t3": (0.10, ("large", "xlarge", "2xlarge")),
    "t3a": (0.06, ("large", "xlarge", "2xlarge")),
}


@dataclass
class Fleet:
    """True demand and what monitoring saw, for ``R`` instances over ``T`` samples."""

    timestamps: np.ndarray
    seen: int  # samples a recommender sees
    resources: list[Resource]
    shape: np.ndarray
    regime: np.ndarray  # True: level changes after the seen days
    cpu: np.ndarray  # (R, T) reference cores
    mem: np.ndarray  # (R, T) GiB
    cpu_pct: np.ndarray  # observed, NaN in gaps, capped at 100
    mem_pct: np.ndarray
    notes: list[list[str]] = field(default_factory=list)

    def histories(self) -> list[UtilizationHistory]:
        """What a recommender sees: the first ``seen`` samples, gaps left out."""
        out = []
        for r, resource in enumerate(self.resources):
            keep = np.isfinite(self.cpu_pct[r, : self.seen])
            out.append(UtilizationHistory(
                resource, self.timestamps[: self.seen][keep],
                {"cpu_pct": self.cpu_pct[r, : self.seen][keep],
                 "mem_pct": self.mem_pct[r, : self.seen][keep]}))
        return out


def make(n: int, seed: int, catalog, *, days: int = 28, seen_days: int = 14,
         regime_share: float = 0.10) -> Fleet:
    """``n`` instances over ``days`` days, the first ``seen_days`` of them seen."""
    rng = np.random.default_rng([seed, 17])
    T = days * PER_DAY
    seen = seen_days * PER_DAY
    t = np.arange(T)
    shapes = rng.choice(list(SHAPES), size=n, p=np.array(list(SHAPES.values())))
    families = list(FAMILIES)
    weights = np.array([FAMILIES[f][0] for f in families])
    resources, cpu, mem, cpu_pct, mem_pct, regime, notes = [], [], [], [], [], [], []
    for i in range(n):
        family = families[rng.choice(len(families), p=weights / weights.sum())]
        size = FAMILIES[family][1][rng.integers(len(FAMILIES[family][1]))]
        kind = shapes[i]
        if family.startswith("t") and kind in ("saturated", "batch", "cron", "growth"):
            kind = shapes[i] = rng.choice(["idle", "steady", "diurnal", "bursty"])
        itype = catalog[f"{family}.{size}"]
        capacity = itype.vcpu * itype.cpu_speed
        unit = _shape(rng, kind, t, seen)
        level = _level(rng, kind, family)
        demand = unit * level * capacity
        note: list[str] = []
        demand = _incidents(rng, demand, t, note)
        changed = rng.random() < regime_share and kind != "idle"
        if changed:
            demand = _regime_change(rng, demand, seen, note)
        memory = _memory(rng, kind, t, itype.memory_gib)
        observed = np.minimum(100.0 * demand / capacity, 100.0)
        memory_pct = np.minimum(100.0 * memory / itype.memory_gib, 100.0)
        observed, memory_pct = _gaps(rng, observed, memory_pct, seen, note)
        resources.append(Resource(f"i-{seed:02d}{i:05d}", "instance",
                                  {"instance_type": itype.name}, {"shape": str(kind)}))
        cpu.append(demand)
        mem.append(memory)
        cpu_pct.append(observed)
        mem_pct.append(memory_pct)
        regime.append(changed)
        notes.append(note)
    return Fleet(START + STEP * t, seen, resources, np.array(shapes, dtype=object),
                 np.array(regime), np.array(cpu), np.array(mem), np.array(cpu_pct),
                 np.array(mem_pct), notes)


# ---------------------------------------------------------------------------- shapes
def _shape(rng, kind: str, t: np.ndarray, seen: int) -> np.ndarray:
    """A positive profile, scaled so that its P99 over the seen samples is 1."""
    hour = (t % PER_DAY) / PER_HOUR
    day = t // PER_DAY
    weekend = ((day + 3) % 7) >= 5  # START is a Thursday
    jitter = np.exp(rng.normal(0, rng.uniform(0.03, 0.12), t.size))
    if kind == "idle":
        x = rng.uniform(0.3, 1.0) * jitter
    elif kind == "steady":
        x = _drift(rng, t.size, rng.uniform(0.004, 0.015)) * jitter
    elif kind in ("diurnal", "leak"):
        x = _daily(rng, hour, weekend) * jitter
    elif kind == "bursty":
        x = rng.uniform(0.1, 0.3) * jitter + _bursts(rng, t.size)
    elif kind == "cron":
        base = _daily(rng, hour, weekend) if rng.random() < 0.5 else np.ones(t.size)
        every = PER_HOUR if rng.random() < 0.7 else 3
        offset = rng.integers(every)
        width = rng.integers(1, 3)
        job = ((t - offset) % every) < width
        x = base * jitter + job * rng.uniform(1.5, 5.0)
    elif kind == "growth":
        base = _daily(rng, hour, weekend) if rng.random() < 0.6 else np.ones(t.size)
        x = base * jitter * (1 + rng.uniform(0.1, 0.5) * t / t.size)
    elif kind == "deploy":
        x = _drift(rng, t.size, 0.01) * jitter
        for _ in range(rng.integers(1, 3)):
            at = rng.integers(2 * PER_DAY, seen - 3 * PER_DAY)
            x[at:] *= rng.choice([rng.uniform(0.45, 0.75), rng.uniform(1.35, 2.2)])
    elif kind == "batch":
        base = _daily(rng, hour, weekend) * 0.6 if rng.random() < 0.5 else np.full(t.size, 0.6)
        start = rng.uniform(0, 5)
        length = rng.uniform(1, 3)
        night = ((hour - start) % 24) < length
        x = base * jitter + night * rng.uniform(1.5, 6.0) * np.exp(rng.normal(0, 0.08, t.size))
        if rng.random() < 0.5:  # a weekly backup, two hours on a weekend night
            backup = (((day + 3) % 7) == 6) & (((hour - 1) % 24) < 2)
            x = x + backup * rng.uniform(2.0, 5.0)
    elif kind == "saturated":
        x = _daily(rng, hour, weekend) * jitter
    else:
        raise ValueError(kind)
    return x / np.quantile(x[:seen], 0.99)


def _daily(rng, hour: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    peak = rng.uniform(8, 20)
    width = rng.uniform(2.5, 6)
    amplitude = rng.uniform(0.8, 4.0)
    distance = np.minimum(np.abs(hour - peak), 24 - np.abs(hour - peak))
    curve = 1 + amplitude * np.exp(-0.5 * (distance / width) ** 2)
    return np.where(weekend, 1 + (curve - 1) * rng.uniform(0.2, 0.8), curve)


def _drift(rng, size: int, scale: float) -> np.ndarray:
    """A slowly wandering level around 1 (a random walk on hours, pulled back)."""
    hours = size // PER_HOUR + 1
    walk = np.zeros(hours)
    steps = rng.normal(0, scale, hours)
    for h in range(1, hours):
        walk[h] = 0.97 * walk[h - 1] + steps[h]
    return np.exp(np.repeat(walk, PER_HOUR)[:size])


def _bursts(rng, size: int) -> np.ndarray:
    out = np.zeros(size)
    rate = rng.uniform(0.2, 2.0) / PER_HOUR  # bursts per sample
    alpha = rng.uniform(1.6, 2.8)
    starts = np.flatnonzero(rng.random(size) < rate)
    for s in starts:
        length = rng.geometric(rng.uniform(0.15, 0.6))
        out[s: s + length] += rng.pareto(alpha) + 0.3
    return out


def _level(rng, kind: str, family: str) -> float:
    """P99 of the seen CPU demand as a share of the current capacity."""
    if kind == "idle":
        return rng.uniform(0.005, 0.035)
    if kind == "saturated":
        return rng.uniform(1.05, 1.6)
    if family.startswith("t"):  # mostly below the baseline on average, as chosen for
        return rng.uniform(0.05, 0.45)  # burstable types
    band = rng.random()
    if band < 0.45:
        return rng.uniform(0.06, 0.35)
    if band < 0.80:
        return rng.uniform(0.35, 0.65)
    return rng.uniform(0.65, 0.92)


# ---------------------------------------------------------------------------- memory
def _memory(rng, kind: str, t: np.ndarray, memory_gib: float) -> np.ndarray:
    base = rng.uniform(0.08, 0.6)
    wiggle = 1 + 0.02 * np.sin(2 * np.pi * t / PER_DAY + rng.uniform(0, 6.3))
    x = base * wiggle * np.exp(rng.normal(0, 0.005, t.size))
    if kind == "leak" or (kind != "idle" and rng.random() < 0.1):
        peak = rng.uniform(max(base + 0.15, 0.45), 0.93)
        cycle = rng.uniform(0.5, 4.0) * PER_DAY
        now = -int(rng.uniform(0, cycle))  # the first cycle began before the data
        while now < t.size:
            length = int(cycle * rng.uniform(0.8, 1.2))
            top = min(peak * rng.normal(1.0, 0.025), 0.97)
            ramp = base + (top - base) * np.linspace(0, 1, length)
            begin, stop = max(now, 0), min(now + length, t.size)
            if stop > begin:
                x[begin:stop] = ramp[begin - now: stop - now]
            now += length
        x = x * np.exp(rng.normal(0, 0.004, t.size))
    elif kind == "growth" and rng.random() < 0.5:
        x = x * (1 + rng.uniform(0.05, 0.4) * t / t.size)
    return np.minimum(x, 0.99) * memory_gib


# --------------------------------------------------------------------------- overlays
def _incidents(rng, demand: np.ndarray, t: np.ndarray, note: list[str]) -> np.ndarray:
    if rng.random() >= 0.10:
        return demand
    out = demand.copy()
    level = np.quantile(demand, 0.99)
    for _ in range(rng.integers(1, 3)):
        at = rng.integers(t.size)
        length = int(min(rng.exponential(1.0) + 0.25, 4.0) * PER_HOUR)
        out[at: at + length] += level * rng.uniform(0.5, 2.0)
        note.append(f"incident day {at / PER_DAY:.1f}, {length / PER_HOUR:.1f} h")
    return out


def _regime_change(rng, demand: np.ndarray, seen: int, note: list[str]) -> np.ndarray:
    at = seen + rng.integers(0, 3 * PER_DAY)
    factor = rng.uniform(0.25, 0.6) if rng.random() < 0.5 else rng.uniform(1.5, 2.5)
    out = demand.copy()
    out[at:] *= factor
    note.append(f"regime change x{factor:.2f} on day {at / PER_DAY:.1f}")
    return out


def _gaps(rng, cpu_pct: np.ndarray, mem_pct: np.ndarray, seen: int, note: list[str]):
    if rng.random() >= 0.15:
        return cpu_pct, mem_pct
    cpu_pct = cpu_pct.copy()
    mem_pct = mem_pct.copy()
    for _ in range(rng.integers(1, 4)):
        at = rng.integers(seen)
        length = int(rng.uniform(1, 30) * PER_HOUR)
        cpu_pct[at: min(at + length, seen)] = np.nan
        mem_pct[at: min(at + length, seen)] = np.nan
        note.append(f"gap day {at / PER_DAY:.1f}, {length / PER_HOUR:.0f} h")
    return cpu_pct, mem_pct
