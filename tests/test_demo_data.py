"""The quickstart's generated sensor data: every length the CLI accepts works."""

from __future__ import annotations

import numpy as np
import pytest

from forestream.demo import DAY, SENSORS, generate_machine


@pytest.mark.parametrize("days", [3, 4, 8])
def test_every_machine_of_a_short_run_has_its_incidents_inside_the_series(days):
    # --days 3 (the CLI's minimum) once crashed on machine-1: a ramp placed near the end
    # ran past the last reading
    for seed in range(40):
        data = generate_machine(f"machine-{seed}", days * DAY, seed)
        assert len(data.incidents) == 4
        for incident in data.incidents:
            assert 2 * DAY <= incident.start <= incident.end < days * DAY
        assert all(np.isfinite(data.values[s]).all() and len(data.values[s]) == days * DAY
                   for s in SENSORS)


def test_same_seed_same_readings():
    first, again = generate_machine("m", 5 * DAY, 7), generate_machine("m", 5 * DAY, 7)
    assert all(np.array_equal(first.values[s], again.values[s]) for s in SENSORS)
    assert first.incidents == again.incidents
