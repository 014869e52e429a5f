"""The recommendation API: findings, reasons, savings, risk, every resource kind, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from forestream.optimizer.catalog import load_catalog
from forestream.optimizer.recommend import (
    HOURS_PER_MONTH,
    InsufficientDataError,
    InvalidParameterError,
    Recommendation,
    candidate_types,
    recommend,
    recommend_many,
)
from forestream.optimizer.risk import migration_effort, performance_risk, risk_label
from forestream.optimizer.types import InstanceType, Resource, UtilizationHistory

START = 1_700_000_000
T = 14 * 288
TS = START + 300 * np.arange(T)
HOURS = np.arange(T) / 12


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _history(cpu, mem=None, *, kind="instance", current=None, rid="r-1", extra=None,
             ts=TS):
    metrics = {"cpu_pct": np.asarray(cpu, dtype=float)}
    if mem is not None:
        metrics["mem_pct"] = np.asarray(mem, dtype=float)
    metrics.update(extra or {})
    current = {"instance_type": "m5.xlarge"} if current is None else current
    return UtilizationHistory(Resource(rid, kind, current), ts, metrics)


def _daily(low, high, seed=0):
    shape = low + (high - low) * np.sin(np.pi * (HOURS % 24) / 24) ** 2
    return shape * (1 + 0.02 * np.random.default_rng(seed).standard_normal(T))


# --------------------------------------------------------------------------- findings
def test_an_oversized_instance_is_overprovisioned_with_cheaper_ranked_options(catalog):
    rec = recommend(_history(_daily(5, 15), np.full(T, 20.0), current={
        "instance_type": "m5.2xlarge"}), catalog)
    assert rec.finding == "Overprovisioned"
    assert rec.reasons == ["CPUOverprovisioned", "MemoryOverprovisioned"]
    assert [o.rank for o in rec.options] == [1, 2, 3]
    prices = [o.monthly_price for o in rec.options]
    assert prices == sorted(prices) and prices[0] < rec.current.monthly_price
    best = catalog[rec.best.name]
    # the option keeps the service level: P99 of 5-minute CPU at most 90 % of its capacity
    need = np.quantile(_daily(5, 15), 0.99) / 100 * 8 / 0.9
    assert best.vcpu * best.cpu_speed >= need
    assert rec.best.projected_utilization["cpu_sizing"] <= 90 + 1e-6


def test_a_saturated_instance_is_underprovisioned_and_moves_up(catalog):
    cpu = np.minimum(_daily(60, 130), 100.0)
    rec = recommend(_history(cpu, np.full(T, 30.0)), catalog)
    assert rec.finding == "Underprovisioned"
    assert "CPUUnderprovisioned" in rec.reasons
    best = catalog[rec.best.name]
    assert best.vcpu * best.cpu_speed > 4.0
    assert rec.current.risk == "High" and rec.current.performance_risk == 4


def test_a_well_sized_instance_is_optimized(catalog):
    rec = recommend(_history(_daily(40, 70), _daily(55, 65, 1),
                             current={"instance_type": "m6a.xlarge"}), catalog)
    assert rec.finding == "Optimized" and rec.reasons == []
    assert rec.best.name == "m6a.xlarge"


def test_a_type_ten_percent_cheaper_is_never_optimized(catalog):
    # m5.xlarge's load fits m6a.xlarge, 10 % cheaper: the finding says so, naming the
    # specification the option reduces
    rec = recommend(_history(_daily(40, 70), _daily(55, 65, 1)), catalog)
    assert rec.best.monthly_price <= 0.9 * rec.current.monthly_price + 1e-9
    assert rec.finding == "Overprovisioned" and rec.reasons
    rec = recommend(_history(_daily(40, 70), _daily(55, 65, 1),
                             current={"instance_type": "c7a.xlarge"}), catalog)
    assert rec.finding == "Overprovisioned" and rec.reasons == ["CPUOverprovisioned"]


def test_findings_agree_with_the_first_option_across_a_fleet(catalog):
    from forestream.optimizer.synthetic import make_fleet

    fleet = make_fleet(40, seed=5, days=15, train_days=14, catalog=catalog)
    for policy in ("forestream", "aws-default"):
        for rec in recommend_many(fleet.histories(0, fleet.train_samples), catalog,
                                  policy=policy):
            ratio = rec.best.monthly_price / rec.current.monthly_price
            if rec.finding == "Optimized":
                assert ratio > 0.9, (rec.resource_id, rec.best.name)
            if rec.finding == "Overprovisioned":
                assert ratio <= 0.9 and rec.reasons, (rec.resource_id, rec.best.name)


def test_memory_pressure_is_reported_next_to_idle_cpu(catalog):
    rec = recommend(_history(_daily(5, 15), np.minimum(_daily(90, 104, 2), 100)), catalog,
                    policy="aws-default")
    assert rec.finding == "Underprovisioned"
    assert set(rec.reasons) == {"CPUOverprovisioned", "MemoryUnderprovisioned"}


def test_an_idle_instance_is_idle(catalog):
    rec = recommend(_history(np.full(T, 0.4), np.full(T, 10.0)), catalog)
    assert rec.finding == "Idle"
    assert rec.workload_class == "idle"


# ---------------------------------------------------------------------------- savings
def test_savings_use_730_hour_months(catalog):
    rec = recommend(_history(_daily(5, 15), np.full(T, 20.0), current={
        "instance_type": "m5.2xlarge"}), catalog)
    now = catalog["m5.2xlarge"].price_per_hour * HOURS_PER_MONTH
    assert rec.current.monthly_price == pytest.approx(now)
    for option in rec.options:
        price = catalog[option.name].price_per_hour * 730
        assert option.monthly_price == pytest.approx(price)
        assert option.savings_monthly == pytest.approx(now - price)
        assert option.savings_pct == pytest.approx(100 * (now - price) / now)


def test_an_auto_scaling_group_multiplies_by_its_desired_count(catalog):
    single = recommend(_history(_daily(5, 15), np.full(T, 20.0)), catalog)
    group = recommend(_history(_daily(5, 15), np.full(T, 20.0), kind="asg", current={
        "instance_type": "m5.xlarge", "desired": 6, "min_size": 2}), catalog)
    assert group.best.name == single.best.name
    assert group.current.monthly_price == pytest.approx(6 * single.current.monthly_price)
    assert group.best.configuration == {"instance_type": single.best.name, "count": 6}


# ------------------------------------------------------------------ risk and migration
def test_performance_risk_scale_and_labels():
    scores = performance_risk(np.array([0.3, 0.7, 0.8, 0.9, 1.5]))
    assert scores.tolist() == [0, 1, 2, 3, 4]
    assert performance_risk(np.array([0.7]), volatile=True).tolist() == [2]
    assert risk_label(np.array([0, 1, 2, 3, 4])).tolist() == [
        "VeryLow", "Low", "Medium", "High", "High"]


def test_migration_effort_grows_with_the_change():
    assert migration_effort("m5", "x86_64", "m5", "x86_64") == "VeryLow"
    assert migration_effort("m5", "x86_64", "c6a", "x86_64") == "Low"
    assert migration_effort("m5", "x86_64", "m7g", "arm64") == "Medium"
    assert migration_effort("m5", "x86_64", "g4dn", "x86_64", 0, 1) == "High"


def test_graviton_is_offered_only_when_allowed(catalog):
    history = _history(_daily(20, 40), np.full(T, 30.0))
    plain = recommend(history, catalog, max_options=5)
    arm = recommend(history, catalog, allow_graviton=True, max_options=5)
    assert all(o.architecture == "x86_64" for o in plain.options)
    assert any(o.architecture == "arm64" for o in arm.options)
    assert {o.migration_effort for o in arm.options if o.architecture == "arm64"} == {"Medium"}


def test_candidates_keep_gpu_families_and_local_disks(catalog):
    gpu = candidate_types("g4dn.xlarge", catalog)
    assert {t.family for t in gpu} == {"g4dn"}
    disks = candidate_types("m5d.xlarge", catalog)
    assert all("d" in t.family[2:] for t in disks)
    plain = candidate_types("m5.xlarge", catalog)
    assert not any(t.burstable or t.gpus for t in plain)


def test_a_plain_list_of_instance_types_works_as_a_catalog():
    types = [InstanceType("a.large", "a", "x86_64", 2, 8.0, 0.10),
             InstanceType("a.xlarge", "a", "x86_64", 4, 16.0, 0.20),
             InstanceType("b.large", "b", "x86_64", 2, 4.0, 0.08)]
    rec = recommend(_history(_daily(5, 20), np.full(T, 20.0), current={
        "instance_type": "a.xlarge"}), types)
    assert rec.best.name == "b.large"
    assert rec.best.savings_monthly == pytest.approx((0.20 - 0.08) * 730)


def test_near_equal_prices_are_ranked_by_a_stable_key_not_by_the_need():
    # b.large costs 0.5 % more than a.large and is 20 % faster: forestream takes it
    # whatever the need (within 3 % of the cheapest fitting price), so a need that
    # moves a little does not swap the two; the baselines keep the cheapest
    types = [InstanceType("a.large", "a", "x86_64", 2, 8.0, 0.100),
             InstanceType("b.large", "b", "x86_64", 2, 8.0, 0.1005, cpu_speed=1.2),
             InstanceType("c.xlarge", "c", "x86_64", 4, 16.0, 0.20)]
    picks = set()
    for high in (20, 30, 40):
        h = _history(_daily(5, high), np.full(T, 20.0), current={"instance_type": "c.xlarge"})
        picks.add(recommend(h, types).best.name)
        assert recommend(h, types, policy="aws-default").best.name == "a.large"
    assert picks == {"b.large"}



def _flat_cores(cores, small_price, medium_price, **preferences):
    # current: 8 vCPU at 0.40/h; demand flat at ``cores`` (memory 10 % of 32 GiB)
    types = [InstanceType("s.large", "s", "x86_64", 2, 8.0, small_price),
             InstanceType("m.xlarge", "m", "x86_64", 4, 16.0, medium_price),
             InstanceType("c.2xlarge", "c", "x86_64", 8, 32.0, 0.40)]
    h = _history(np.full(T, 100 * cores / 8), np.full(T, 10.0),
                 current={"instance_type": "c.2xlarge"})
    return recommend(h, types, **preferences).best.name


def test_forestream_sizes_to_the_service_level_the_user_states():
    # P99 at most 90 % of capacity by default: 1.75 cores fit 2, 1.9 do not
    assert _flat_cores(1.75, 0.05, 0.20) == "s.large"
    assert _flat_cores(1.9, 0.05, 0.20) == "m.xlarge"
    # a looser service level (P99 at most 100 %) lets 1.9 cores run on 2
    assert _flat_cores(1.9, 0.05, 0.20, slo_utilization=100) == "s.large"
    # AWS's rule (P99.5 + 20 %) needs 4 cores for 1.75
    assert _flat_cores(1.75, 0.05, 0.20, policy="aws-default") == "m.xlarge"


def _bursts(days_with_burst, hours=2.0, seed=0):
    rng = np.random.default_rng(seed)
    cpu = 15 + 2 * rng.standard_normal(T)  # 15 % of 8 vCPUs, plus a burst at 70 %
    for day in days_with_burst:
        start = day * 288 + 100
        cpu[start: start + int(hours * 12)] = 70.0
    return np.clip(cpu, 0, 100)


def test_a_recurring_burst_is_sized_for_and_a_short_one_off_is_not():
    types = [InstanceType("s.large", "s", "x86_64", 2, 8.0, 0.05),
             InstanceType("m.xlarge", "m", "x86_64", 4, 16.0, 0.10),
             InstanceType("c.2xlarge", "c", "x86_64", 8, 32.0, 0.40)]

    def best(cpu):
        h = _history(cpu, np.full(T, 10.0), current={"instance_type": "c.2xlarge"})
        return catalog_capacity(types, recommend(h, types).best.name)

    # every day: 70 % of 8 vCPUs (5.6 cores) must fit under 90 %
    assert best(_bursts(range(14))) >= 5.6 / 0.9
    # a burst on a few days only still recurs: sized for it
    assert best(_bursts([2, 6, 11])) >= 5.6 / 0.9
    # one 40-minute incident in two weeks is under the percentile's 1 % tail, however
    # the days come: sized on the ordinary load
    assert best(_bursts([6], hours=0.66)) == 2.0


def catalog_capacity(types, name):
    return next(t.vcpu * t.cpu_speed for t in types if t.name == name)


def test_a_very_high_risk_first_option_gives_way_to_a_safe_one_within_the_premium():
    # saturated at 100 % of 4 vCPUs: the demand above was never seen; forestream asks
    # for at most one doubling (8 vCPUs), which its own levels rate very high risk
    types = [InstanceType("c.xlarge", "c", "x86_64", 4, 16.0, 0.20),
             InstanceType("d.2xlarge", "d", "x86_64", 8, 32.0, 0.40),
             InstanceType("e.4xlarge", "e", "x86_64", 16, 64.0, 0.43)]
    h = _history(np.full(T, 100.0), np.full(T, 20.0), current={"instance_type": "c.xlarge"})
    rec = recommend(h, types)
    assert rec.best.name == "e.4xlarge" and rec.best.performance_risk <= 1
    pricier = types[:2] + [InstanceType("e.4xlarge", "e", "x86_64", 16, 64.0, 0.80)]
    rec = recommend(h, pricier)
    assert rec.best.name == "d.2xlarge" and rec.best.performance_risk == 4


def test_burstable_types_are_offered_only_while_their_credits_last(catalog):
    # t3.large: 30 % baseline per vCPU. At 42 % all day the credits run out: no T type
    busy = recommend(_history(np.full(T, 42.0) + np.random.default_rng(1).normal(0, 2, T),
                              np.full(T, 30.0), current={"instance_type": "t3.large"}),
                     catalog)
    assert not catalog[busy.best.name].burstable
    # at 10 % with an hour a day at 60 % it earns more than it spends: T types stay
    quiet = np.full(T, 10.0)
    quiet[(np.arange(T) % 288) < 12] = 60.0
    rec = recommend(_history(quiet, np.full(T, 30.0), current={"instance_type": "t3.large"}),
                    catalog)
    assert catalog[rec.best.name].burstable


def test_a_memory_sawtooth_is_sized_on_its_peaks_between_restarts(catalog):
    # a leak from 30 % to 79 % of 32 GiB, cleared by a restart every ~2 days
    cycle = (np.arange(T) % 600) / 600
    peak = 79 + np.random.default_rng(2).normal(0, 0.5, T // 600 + 1)[np.arange(T) // 600]
    mem = 30 + (peak - 30) * cycle
    rec = recommend(_history(_daily(20, 40), mem, current={"instance_type": "r5.xlarge"}),
                    catalog)
    assert "MemoryUnderprovisioned" not in rec.reasons
    assert catalog[rec.best.name].memory_gib <= 32
    assert any("sawtooth" in note for note in rec.notes)


# ----------------------------------------------------------------------- other kinds
def test_container_requests_follow_usage():
    rec = recommend(_history(_daily(10, 30), np.full(T, 25.0), kind="container",
                             current={"cpu": 2.0, "memory_gib": 4.0}))
    assert rec.finding == "Overprovisioned"
    cpu, memory = rec.best.configuration["cpu"], rec.best.configuration["memory_gib"]
    assert 0.6 * 0.99 <= cpu <= 0.7 and 1.0 <= memory <= 1.2
    assert rec.best.savings_monthly > 0


def test_function_memory_from_the_duration_memory_trade_off():
    io_bound = {"invocations": np.full(T, 5.0), "duration_ms": np.full(T, 200.0),
                "mem_pct": np.full(T, 10.0)}
    rec = recommend(_history(np.full(T, 10.0), kind="function",
                             current={"memory_mb": 2048}, extra=io_bound))
    assert rec.finding == "Overprovisioned" and rec.reasons == ["MemoryOverprovisioned"]
    assert rec.best.configuration["memory_mb"] < 2048
    cpu_bound = dict(io_bound, mem_pct=np.full(T, 40.0))
    rec = recommend(_history(np.full(T, 100.0), kind="function",
                             current={"memory_mb": 256}, extra=cpu_bound))
    assert rec.finding == "Underprovisioned"
    assert rec.best.configuration["memory_mb"] > 256


def test_volume_iops_and_throughput():
    busy = {"disk_read_ops": _daily(2000, 9000), "disk_write_ops": np.full(T, 500.0),
            "disk_read_bytes": np.full(T, 50 * 2**20)}
    rec = recommend(_history(np.full(T, 10.0), kind="volume", extra=busy, current={
        "volume_type": "gp3", "size_gib": 500, "iops": 6000, "throughput_mbps": 125}))
    assert rec.finding == "Underprovisioned" and "EBSIOPSUnderprovisioned" in rec.reasons
    assert rec.best.configuration["volume_type"] == "gp3"
    assert rec.best.configuration["iops"] >= 9500
    quiet = {"disk_read_ops": np.full(T, 300.0), "disk_read_bytes": np.full(T, 2**20)}
    rec = recommend(_history(np.full(T, 10.0), kind="volume", extra=quiet, current={
        "volume_type": "io2", "size_gib": 100, "iops": 20000}))
    assert rec.finding == "Overprovisioned" and rec.best.savings_monthly > 1000


def test_stream_shards_from_per_shard_limits():
    # 3.5 MiB/s in at peak: four shards at 1 MiB/s each (1,000 records/s is not binding)
    traffic = {"bytes_in": _daily(1.0, 3.3) * 2**20, "records_in": np.full(T, 500.0),
               "bytes_out": _daily(1.0, 3.3) * 2**20}
    rec = recommend(_history(np.full(T, 1.0), kind="stream", extra=traffic,
                             current={"shards": 10}))
    assert rec.finding == "Overprovisioned" and rec.reasons == [
        "StreamThroughputOverprovisioned"]
    assert rec.best.configuration == {"shards": 4}
    assert rec.best.monthly_price == pytest.approx(4 * 0.015 * 730)
    many_records = dict(traffic, records_in=_daily(500, 5500))
    rec = recommend(_history(np.full(T, 1.0), kind="stream", extra=many_records,
                             current={"shards": 4}))
    # the P99 of 5,500 records/s at most 90 % of 1,000 per shard: 7 shards
    assert rec.finding == "Underprovisioned" and rec.best.configuration["shards"] == 7


def test_application_parallelism_and_endpoint_workers(catalog):
    app = recommend(_history(np.full(T, 1.0), kind="application",
                             extra={"busy_pct": _daily(10, 30)}, current={"parallelism": 8}))
    assert app.finding == "Overprovisioned" and app.best.configuration == {"parallelism": 3}
    lagging = recommend(_history(np.full(T, 1.0), kind="application", current={
        "parallelism": 2}, extra={"busy_pct": _daily(40, 60),
                                  "millis_behind": np.full(T, 120_000.0)}))
    assert lagging.finding == "Underprovisioned"
    assert lagging.best.configuration == {"parallelism": 3}
    endpoint = recommend(_history(_daily(50, 80), kind="endpoint", current={
        "workers": 2, "instance_type": "ml.m5.large"}), catalog)
    assert endpoint.best.configuration == {"workers": 2}
    assert endpoint.current.monthly_price == pytest.approx(
        2 * catalog["m5.large"].price_per_hour * 730)


# ------------------------------------------------------------------------- errors
def test_less_than_30_hours_is_insufficient_data(catalog):
    short = _history(np.full(300, 20.0), ts=TS[:300])  # 25 hours
    with pytest.raises(InsufficientDataError, match="25.0 hours.*at least 30"):
        recommend(short, catalog)
    ok = _history(np.full(T, 20.0), rid="r-2")
    recs = recommend_many([short, ok], catalog)
    assert recs[0].finding == "InsufficientData" and recs[0].options == []
    assert recs[1].finding != "InsufficientData"


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("cpu_percentile", 99.0, "90.0, 95.0, 99.5"),
    ("cpu_headroom", 0.1, "0.0, 0.2, 0.3"),
    ("mem_headroom", 0.5, "0.1, 0.2, 0.3"),
    ("lookback_days", 30, "14, 32, 93"),
    ("policy", "greedy", "'forestream', 'aws-default', 'max-rule', 'vpa', 'krr'"),
])
def test_bad_preferences_name_the_value_and_the_allowed_set(catalog, name, value, allowed):
    with pytest.raises(InvalidParameterError) as error:
        recommend(_history(np.full(T, 20.0)), catalog, **{name: value})
    assert name in str(error.value) and repr(value) in str(error.value)
    assert allowed in str(error.value)


def test_unknown_instance_type_is_reported_or_raised(catalog):
    bad = _history(np.full(T, 20.0), current={"instance_type": "m5.hyuge"})
    with pytest.raises(ValueError, match="m5.hyuge"):
        recommend(bad, catalog)
    assert recommend_many([bad], catalog)[0].finding == "Unsupported"


def test_recommendations_serialize_to_json(catalog):
    rec = recommend(_history(_daily(5, 15), np.full(T, 20.0)), catalog)
    data = json.loads(json.dumps(rec.to_dict()))
    assert data["resource_id"] == "r-1" and data["options"][0]["rank"] == 1
    assert set(data["current"]) >= {"name", "monthly_price", "risk", "utilization"}
    assert isinstance(rec, Recommendation)


def test_recommend_many_matches_recommend_one_by_one(catalog):
    histories = [_history(_daily(5 + 10 * i, 20 + 15 * i, i), np.full(T, 20.0 + 5 * i),
                          rid=f"r-{i}") for i in range(4)]
    batch = recommend_many(histories, catalog)
    single = [recommend(h, catalog) for h in histories]
    assert [r.best.name for r in batch] == [r.best.name for r in single]
    assert [r.resource_id for r in batch] == [f"r-{i}" for i in range(4)]
