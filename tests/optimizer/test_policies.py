"""Sizing policies: the baselines as their authors define them, and forestream's rules."""

from __future__ import annotations

import numpy as np
import pytest

from forestream.optimizer.policies import (
    POLICIES,
    VPA_MIN_CPU,
    Demand,
    requirements,
    vpa_percentile,
)

T = 14 * 288


def _demand(cpu: np.ndarray, mem: np.ndarray | None = None, cpu_cap: float = 4.0,
            mem_cap: float = 16.0) -> Demand:
    cpu = np.atleast_2d(np.asarray(cpu, dtype=float))
    R = cpu.shape[0]
    mem_m = None if mem is None else np.atleast_2d(np.asarray(mem, dtype=float))
    return Demand(cpu, cpu / cpu_cap * 100, mem_m,
                  None if mem_m is None else mem_m / mem_cap * 100, None, None,
                  np.full(R, cpu_cap), np.full(R, mem_cap), np.zeros(R), np.zeros(R))


def _ramp() -> np.ndarray:
    """CPU values 0.001 .. 4.032 cores in a shuffled order: known percentiles."""
    return np.random.default_rng(1).permutation(np.arange(1, T + 1) / 1000.0)


def test_aws_default_is_p99_5_plus_20_percent_and_memory_max_plus_20_percent():
    cpu = _ramp()
    mem = np.full(T, 6.0)
    mem[100] = 8.0
    req = requirements("aws-default", _demand(cpu, mem))
    assert req.cpu[0] == pytest.approx(np.quantile(cpu, 0.995) * 1.2)
    assert req.mem[0] == pytest.approx(8.0 * 1.2)


def test_aws_preferences_change_percentile_and_headroom():
    cpu = _ramp()
    req = requirements("aws-default", _demand(cpu), cpu_percentile=90.0, cpu_headroom=0.0,
                       mem_headroom=0.3)
    assert req.cpu[0] == pytest.approx(np.quantile(cpu, 0.90))


def test_max_rule_and_krr():
    cpu = _ramp()
    mem = np.full(T, 5.0)
    mem[7] = 10.0
    max_rule = requirements("max-rule", _demand(cpu, mem))
    assert max_rule.cpu[0] == pytest.approx(cpu.max() * 1.2)
    assert max_rule.mem[0] == pytest.approx(12.0)
    krr = requirements("krr", _demand(cpu, mem))
    assert krr.cpu[0] == pytest.approx(np.quantile(cpu, 0.95))
    assert krr.mem[0] == pytest.approx(11.5)
    assert np.isnan(krr.gpu[0])  # KRR does not size GPUs


def test_vpa_histogram_returns_the_end_of_the_percentile_bucket():
    values = np.array([[0.5] * 9 + [2.0]])
    got = vpa_percentile(values, np.ones_like(values), 0.01, 1000.0, 0.9)[0]
    bucket = int(np.log(0.5 * 0.05 / 0.01 + 1) / np.log(1.05))
    assert got == pytest.approx(0.01 * (1.05 ** (bucket + 1) - 1) / 0.05)
    assert 0.5 < got < 0.5 * 1.05 + 0.01


def test_vpa_decay_makes_recent_usage_dominate():
    old_high = np.where(np.arange(T) < T // 2, 3.0, 0.5)
    old_low = np.where(np.arange(T) < T // 2, 0.5, 3.0)
    req = requirements("vpa", _demand(np.vstack([old_high, old_low])))
    # a week of 24-hour half-lives: the old half weighs 1/128 of the new one
    assert req.cpu[0] == pytest.approx(0.5 * 1.15, rel=0.06)
    assert req.cpu[1] == pytest.approx(3.0 * 1.15, rel=0.06)


def test_vpa_memory_uses_p90_of_daily_peaks_times_1_15_and_minimums():
    mem = np.full(T, 2.0)
    mem[5] = 9.0  # one peak on the first day only
    req = requirements("vpa", _demand(np.full(T, 0.001), mem))
    assert req.mem[0] == pytest.approx(2.0 * 1.15, rel=0.06)
    assert req.cpu[0] == pytest.approx(VPA_MIN_CPU)


def test_forestream_sizes_to_p99_over_90_percent_and_aws_to_p99_5_plus_20_percent():
    hours = np.arange(T) / 12
    cpu = 1.0 + 0.4 * np.sin(np.pi * (hours % 24) / 24) ** 2
    cpu = cpu * (1 + 0.02 * np.random.default_rng(3).standard_normal(T))
    fs = requirements("forestream", _demand(cpu))
    aws = requirements("aws-default", _demand(cpu))
    assert aws.cpu[0] == pytest.approx(np.quantile(cpu, 0.995) * 1.2)
    # the same load every day: the drawn periods agree, the level is the lookback's P99
    assert fs.cpu_level[0] == pytest.approx(np.quantile(cpu, 0.99), rel=0.03)
    assert fs.cpu[0] == pytest.approx(fs.cpu_level[0] / 0.9)


def test_a_one_off_incident_longer_than_the_tail_moves_the_level_and_a_short_one_does_not():
    hours = np.arange(T) / 12
    base = 1.0 + 0.02 * np.random.default_rng(3).standard_normal(T)
    short = np.where((hours >= 130) & (hours < 131), 3.9, base)  # an hour: 0.3 % of samples
    long = np.where((hours >= 130) & (hours < 136), 3.9, base)  # six hours: 1.8 %
    assert requirements("forestream", _demand(short)).cpu_level[0] < 1.1
    assert requirements("forestream", _demand(long)).cpu_level[0] == pytest.approx(3.9)


def test_forestream_sizes_after_a_regime_shift():
    cpu = np.where(np.arange(T) < T // 3, 3.0, 1.0) * (
        1 + 0.02 * np.random.default_rng(4).standard_normal(T))
    fs = requirements("forestream", _demand(cpu))
    assert fs.cpu_level[0] < 1.1
    assert fs.analysis.regime_start[0] > 0


def test_a_deploy_step_up_is_a_regime_not_growth():
    # down on day 3, up on day 8 (higher than before): week over week every day's median
    # is higher, which once read as a trend doubling the load; it is a level shift
    days = np.arange(T) / 288
    cpu = np.select([days < 3, days < 8], [1.2, 0.7], 1.5) * (
        1 + 0.03 * np.random.default_rng(7).standard_normal(T))
    fs = requirements("forestream", _demand(cpu), horizon_days=14.0)
    assert fs.analysis.regime_start[0] >= 8 * 288
    assert fs.cpu_level[0] < 1.5 * 1.1
    assert not any("growing" in note for note in fs.notes[0])


def test_forestream_projects_a_memory_leak_over_the_horizon():
    days = np.arange(T) / 288
    mem = 4.0 * (1 + 0.03 * days)
    short = requirements("forestream", _demand(np.full(T, 1.0), mem), horizon_days=1.0)
    long = requirements("forestream", _demand(np.full(T, 1.0), mem), horizon_days=7.0)
    assert long.mem[0] > short.mem[0] > mem.max()
    assert long.mem_level[0] == pytest.approx(4.0 * (1 + 0.03 * 20.5), rel=0.03)


def test_forestream_projects_cpu_growth_seen_week_over_week():
    days = np.arange(T) / 288
    weekend = ((days.astype(int) % 7) >= 5)
    cpu = np.where(weekend, 0.6, 1.0) * (1 + 0.02 * days) * (
        1 + 0.02 * np.random.default_rng(6).standard_normal(T))
    fs = requirements("forestream", _demand(cpu), horizon_days=14.0)
    assert fs.cpu_level[0] > np.quantile(cpu, 0.99) * 1.15
    assert any("growing" in note for note in fs.notes[0])


def test_forestream_asks_for_at_most_double_a_saturated_cpu():
    cpu = np.minimum(4.0 * np.random.default_rng(5).uniform(0.6, 1.6, T), 4.0)
    fs = requirements("forestream", _demand(cpu))
    aws = requirements("aws-default", _demand(cpu))
    assert aws.cpu[0] == pytest.approx(4.8)
    assert 4.4 <= fs.cpu[0] <= 8.0
    assert any("saturated" in note for note in fs.notes[0])
    # the level is raised by the demand never measured, not by which days come
    assert not any("which days come" in note for note in fs.notes[0])


def test_unknown_policy_is_rejected_naming_the_choices():
    with pytest.raises(ValueError, match="policy must be one of"):
        requirements("magic", _demand(np.ones(T)))
    assert set(POLICIES) == {"forestream", "aws-default", "max-rule", "vpa", "krr"}


def _mem_need(mem: np.ndarray) -> float:
    return float(requirements("forestream", _demand(np.full(T, 1.0), mem)).mem[0])


def test_a_flat_memory_is_sized_about_one_percent_above_its_peak_not_three():
    # daily peaks within a few tenths of a percent: the next period's peak cannot go far
    mem = 10.0 * np.exp(0.002 * np.random.default_rng(11).standard_normal(T))
    need = _mem_need(mem)
    assert mem.max() * 1.01 - 1e-9 <= need < mem.max() * 1.02


def test_memory_whose_daily_peaks_wander_is_sized_more_than_three_spreads_above():
    rng = np.random.default_rng(12)
    day_peak = 10.0 * (1 + 0.02 * rng.standard_normal(14))  # peaks wander by 2 %
    profile = 0.8 + 0.2 * np.sin(np.linspace(0, np.pi, 288))
    mem = (day_peak[:, None] * profile[None, :]).ravel()
    spread = day_peak.std(ddof=1)
    need = _mem_need(mem)
    assert need > mem.max() + 5.0 * spread  # 1-in-1000 rise of the highest of the peaks
    assert need < mem.max() + 6.0 * spread


def test_a_growing_memory_margin_is_its_spread_about_the_trend_not_the_trend():
    days = np.arange(T) / 288
    mem = 4.0 * (1 + 0.01 * days) * np.exp(0.001 * np.random.default_rng(13).standard_normal(T))
    fs = requirements("forestream", _demand(np.full(T, 1.0), mem), horizon_days=14.0)
    assert fs.mem_level[0] > mem.max() * 1.1  # the trend is projected
    assert fs.mem[0] < fs.mem_level[0] * 1.02  # and not counted again as spread


def test_a_flat_memory_seen_for_under_a_week_keeps_at_least_three_percent():
    days = 5
    mem = 10.0 * np.exp(0.002 * np.random.default_rng(14).standard_normal(days * 288))
    fs = requirements("forestream", _demand(np.full(days * 288, 1.0), mem))
    assert fs.mem[0] >= mem.max() * 1.03 - 1e-9
