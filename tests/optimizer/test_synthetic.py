"""The synthetic fleet: seeded, labelled from its own demand, observed like a real one."""

from __future__ import annotations

import numpy as np
import pytest

from forestream.optimizer.catalog import load_catalog
from forestream.optimizer.recommend import recommend_many
from forestream.optimizer.synthetic import ARCHETYPES, BANDS, make_fleet
from forestream.optimizer.workload import WORKLOAD_CLASSES


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def fleet(catalog):
    return make_fleet(120, seed=7, catalog=catalog)


def test_the_same_seed_gives_the_same_fleet(catalog):
    a = make_fleet(15, seed=3, days=4, train_days=2, catalog=catalog)
    b = make_fleet(15, seed=3, days=4, train_days=2, catalog=catalog)
    c = make_fleet(15, seed=4, days=4, train_days=2, catalog=catalog)
    np.testing.assert_array_equal(a.true_cpu, b.true_cpu)
    assert list(a.finding) == list(b.finding)
    assert not np.array_equal(a.true_cpu, c.true_cpu)


def test_every_archetype_appears_and_classes_are_known(fleet):
    assert set(fleet.archetype) == set(ARCHETYPES)
    assert set(fleet.workload_class) <= set(WORKLOAD_CLASSES)
    weekly = fleet.archetype == "weekly"
    assert set(fleet.period_hours[weekly]) == {168}


def _needs(fleet, catalog):
    """The held-back need of each specification, as a fraction of the current size."""
    held = slice(fleet.train_samples, None)
    out = []
    for r, resource in enumerate(fleet.resources):
        t = catalog[resource.current["instance_type"]]
        cpu = np.quantile(fleet.true_cpu[r, held], 0.995) / (t.vcpu * t.cpu_speed)
        mem = fleet.true_mem[r, held].max() / t.memory_gib
        gpu = np.quantile(fleet.true_gpu[r, held], 0.995) / t.gpus if t.gpus else np.nan
        out.append((cpu, mem, gpu, t.gpus))
    return out


def test_finding_labels_follow_from_the_known_demand(fleet, catalog):
    over_hi, (opt_lo, opt_hi) = BANDS["over"][1], BANDS["optimized"]
    for label, (cpu, mem, gpu, gpus) in zip(fleet.finding, _needs(fleet, catalog), strict=True):
        specs = [cpu, mem] + ([gpu] if gpus > 1 else [])
        if label == "Idle":
            assert cpu <= 0.03 + 1e-9
        elif label == "Underprovisioned":
            assert cpu >= BANDS["under_cpu"][0] - 1e-9 or mem >= BANDS["under_mem"][0] - 1e-9 \
                or (gpus > 1 and gpu >= 1.15 - 1e-9) or (gpus == 1 and gpu >= 1.15 - 1e-9)
        elif label == "Overprovisioned":
            assert min(specs) <= over_hi + 1e-9 and max(specs) <= opt_hi + 1e-9
        else:
            assert all(opt_lo - 1e-9 <= v <= opt_hi + 1e-9 for v in specs)


def test_observations_are_capped_percentages_of_the_current_size(fleet, catalog):
    assert np.nanmax(fleet.cpu_pct) <= 100.0 and np.nanmax(fleet.mem_pct) <= 100.0
    r = int(np.flatnonzero(fleet.finding == "Overprovisioned")[0])
    t = catalog[fleet.resources[r].current["instance_type"]]
    measured = np.isfinite(fleet.cpu_pct[r])
    np.testing.assert_allclose(fleet.cpu_pct[r, measured],
                               fleet.true_cpu[r, measured] / (t.vcpu * t.cpu_speed) * 100)
    saturated = fleet.finding == "Underprovisioned"
    assert (np.nanmax(fleet.cpu_pct[saturated], axis=1) >= 99.9).any()
    assert np.isnan(fleet.cpu_pct).any()  # some samples are missing, as in real data


def test_histories_are_the_lookback_as_views(fleet):
    histories = fleet.histories()
    assert len(histories) == len(fleet)
    h = histories[0]
    assert len(h.timestamps) == fleet.train_samples == 14 * 288
    assert np.shares_memory(h.metrics["cpu_pct"], fleet.cpu_pct)
    gpu = [x for x in histories if x.resource.tags["archetype"] == "gpu"]
    assert gpu and all("gpu_pct" in x.metrics for x in gpu)


def test_forestream_recovers_the_workload_classes(fleet, catalog):
    recs = recommend_many(fleet.histories(), catalog)
    predicted = np.array([r.workload_class for r in recs], dtype=object)
    assert np.mean(predicted == fleet.workload_class) >= 0.9


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="train_days"):
        make_fleet(5, days=3, train_days=3)
    with pytest.raises(ValueError, match="unknown archetypes"):
        make_fleet(5, mix={"chaotic": 1.0})


def test_functions_are_observed_from_their_true_duration_model():
    from forestream.optimizer.synthetic import make_functions

    fns = make_functions(6, seed=2, days=3, train_days=2)
    for r, resource in enumerate(fns.resources):
        size = resource.current["memory_mb"]
        assert np.mean(fns.duration_ms[r]) == pytest.approx(fns.true_duration_ms(r, size),
                                                            rel=0.05)
        assert np.median(fns.cpu_pct[r]) == pytest.approx(100 * fns.cpu_bound[r], rel=0.05)
        # more memory never makes it slower; beyond one vCPU it does not help
        assert fns.true_duration_ms(r, 3008) == fns.true_duration_ms(r, 1769)
        assert fns.true_duration_ms(r, 1769) <= fns.true_duration_ms(r, 128)
    assert len(fns.histories()[0].timestamps) == 2 * 288
