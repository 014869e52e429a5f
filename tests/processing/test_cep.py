"""Event patterns per key (CEP): contiguity, counts, time bounds, state across restarts."""

import pytest

from forestream.processing import StreamExecutionEnvironment
from forestream.processing.cep import Pattern


def run(events, pattern, checkpoint_dir=None, until=None):
    env = StreamExecutionEnvironment(checkpoint_dir=checkpoint_dir, checkpoint_interval=0.0,
                                     batch_size=2)
    out = (env.from_collection(events, timestamps=[e["t"] for e in events])
           .key_by(lambda e: e["k"]).pattern(pattern).collect())
    env.execute(until=until)
    return out.values


def ev(k, t, kind):
    return {"k": k, "t": t, "kind": kind}


def kinds(match):
    return {stage: [e["t"] for e in events] for stage, events in match.items()}


def test_followed_by_skips_unrelated_events_and_next_does_not():
    events = [ev("a", 0, "login"), ev("a", 1, "view"), ev("a", 2, "buy")]
    relaxed = (Pattern.begin("login").where(lambda e: e["kind"] == "login")
               .followed_by("buy").where(lambda e: e["kind"] == "buy"))
    assert [kinds(m) for m in run(events, relaxed)] == [{"login": [0], "buy": [2]}]
    strict = (Pattern.begin("login").where(lambda e: e["kind"] == "login")
              .next("buy").where(lambda e: e["kind"] == "buy"))
    assert run(events, strict) == []
    assert [kinds(m) for m in run([ev("a", 0, "login"), ev("a", 1, "buy")], strict)] == [
        {"login": [0], "buy": [1]}]


def test_three_anomalies_within_ten_minutes_per_key_fires_once_per_three():
    events = [ev("d1", 0, "x"), ev("d2", 10, "x"), ev("d1", 100, "x"), ev("d1", 200, "x"),
              ev("d1", 300, "x"), ev("d2", 1000, "x"), ev("d1", 400, "x"), ev("d1", 500, "x"),
              ev("d2", 1100, "x")]
    three = Pattern.begin("a").where(lambda e: e["kind"] == "x").times(3).within(600)
    got = [(m["a"][0]["k"], [e["t"] for e in m["a"]]) for m in run(events, three)]
    # d1: 0,100,200 then 300,400,500; d2: 10 and 1000 are too far apart, 1000,1100 only two
    assert got == [("d1", [0, 100, 200]), ("d1", [300, 400, 500])]


def test_within_drops_partial_matches_that_take_too_long():
    events = [ev("a", 0, "start"), ev("a", 700, "end"), ev("a", 800, "start"),
              ev("a", 900, "end")]
    pattern = (Pattern.begin("s").where(lambda e: e["kind"] == "start")
               .followed_by("e").where(lambda e: e["kind"] == "end").within(600))
    assert [kinds(m) for m in run(events, pattern)] == [{"s": [800], "e": [900]}]


def test_or_where_and_combined_conditions():
    events = [ev("a", 0, "warn"), ev("a", 1, "error"), ev("a", 2, "fatal")]
    pattern = (Pattern.begin("bad").where(lambda e: e["kind"] == "error")
               .or_where(lambda e: e["kind"] == "fatal").times(2))
    assert [kinds(m) for m in run(events, pattern)] == [{"bad": [1, 2]}]


def test_partial_matches_survive_a_restart(tmp_path):
    events = [ev("a", t, "x") for t in range(0, 60, 10)]
    pattern = Pattern.begin("a").where(lambda e: e["kind"] == "x").times(4)
    reference = run(events, pattern)
    steps = {"n": 0}

    def stop_early():
        steps["n"] += 1
        return steps["n"] > 1  # after 2 of 6 events (batch size 2): a partial is in state

    first = run(events, pattern, tmp_path / "ck", until=stop_early)
    assert first == []
    rest = run(events, pattern, tmp_path / "ck")
    assert [kinds(m) for m in rest] == [kinds(m) for m in reference] == [{"a": [0, 10, 20, 30]}]


def test_bad_patterns_are_refused():
    with pytest.raises(ValueError, match="unique"):
        Pattern.begin("a").followed_by("a")
    with pytest.raises(ValueError, match="times"):
        Pattern.begin("a").times(0)
    with pytest.raises(ValueError, match="within"):
        Pattern.begin("a").within(0)
