"""Generated sensor data with injected incidents, for the quickstart and examples.

Machines report temperature, CPU and latency every 5 minutes with daily cycles, noise
and slow drift; incidents are injected with known positions: spikes, level shifts, a
stuck sensor and a slow ramp. Knowing the truth lets a demo report precision and recall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DAY = 288  # 5-minute samples per day
SENSORS = ("temperature", "cpu", "latency_ms")


@dataclass
class Incident:
    sensor: str
    kind: str  # spike | level_shift | stuck | ramp
    start: int
    end: int  # inclusive


@dataclass
class SensorData:
    machine: str
    values: dict[str, np.ndarray]
    incidents: list[Incident] = field(default_factory=list)

    def truth(self, sensor: str) -> np.ndarray:
        """Boolean per row: inside an incident of ``sensor``."""
        mask = np.zeros(len(self.values[sensor]), dtype=bool)
        for inc in self.incidents:
            if inc.sensor == sensor:
                mask[inc.start : inc.end + 1] = True
        return mask


def generate_machine(machine: str, rows: int = 8 * DAY, seed: int = 0) -> SensorData:
    """One machine's three sensors with four incidents placed after the first two days."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    daily = np.sin(2 * np.pi * (t / DAY + rng.random()))
    values = {
        "temperature": 60 + 6 * daily + 0.0004 * t + rng.normal(0, 0.4, rows),
        "cpu": np.clip(35 + 20 * daily + rng.normal(0, 2.5, rows), 0, 100),
        "latency_ms": 40 + 8 * np.maximum(daily, 0) + rng.gamma(2.0, 1.5, rows),
    }
    incidents = []
    kinds = ["spike", "level_shift", "stuck", "ramp"]
    rng.shuffle(kinds)
    slots = np.linspace(2 * DAY, rows - DAY // 2, len(kinds) + 1).astype(int)
    for kind, start in zip(kinds, slots[:-1] + rng.integers(0, DAY // 2, len(kinds)),
                           strict=True):
        sensor = SENSORS[rng.integers(len(SENSORS))]
        series = values[sensor]
        scale = series[: 2 * DAY].std()
        # an incident placed near the end of a short series is cut at its last reading
        length = {"spike": 2, "level_shift": DAY // 3, "stuck": DAY // 3}.get(kind, DAY // 2)
        end = min(start + length, rows - 1)
        if kind == "spike":
            series[start : end + 1] += 6 * scale * rng.choice([-1, 1])
        elif kind == "level_shift":
            series[start : end + 1] += 2.5 * scale
        elif kind == "stuck":
            series[start : end + 1] = series[start]
        else:
            series[start : end + 1] += np.linspace(0, 4 * scale * (end - start) / length,
                                                   end - start + 1)
        incidents.append(Incident(sensor, kind, int(start), int(end)))
    return SensorData(machine, values, incidents)


def event_metrics(flags: np.ndarray, truth: np.ndarray, tolerance: int = 12
                  ) -> tuple[int, int, int, int]:
    """(incidents found, incidents, flags inside an incident (+tolerance), flags)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], truth.astype(int), [0]])))
    spans = list(zip(edges[::2], edges[1::2] - 1, strict=True))
    near = np.zeros(len(truth), dtype=bool)
    found = 0
    for start, end in spans:
        stop = min(len(truth), end + tolerance + 1)
        near[start:stop] = True
        found += bool(flags[start:stop].any())
    return found, len(spans), int((flags & near).sum()), int(flags.sum())
