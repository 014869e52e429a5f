"""The Flink translation: what a job graph becomes on Flink, and what is refused (with
the node and the reason) at create time, without Flink."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from forestream.processing import (
    EventTimeSessionWindows,
    GlobalWindows,
    KeyedProcessFunction,
    OutputTag,
    Pattern,
    ProcessFunction,
    Sink,
    SlidingEventTimeWindows,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
    WatermarkStrategy,
    kinesis_client,
)
from forestream.processing.errors import ApplicationError
from forestream.processing.flink.dry_run import dry_translate
from forestream.processing.flink.translate import UntranslatableJob, translate
from forestream.processing.windows import ContinuousEventTimeTrigger, CountTrigger
from forestream.quickstart import APP_CODE

ENDPOINT = "http://127.0.0.1:4567"  # never called: planning reads the client's endpoint


@pytest.fixture
def client():
    return kinesis_client(ENDPOINT)


class Tag(ProcessFunction):
    def process_element(self, value, ctx):
        if value < 0:
            ctx.output(OutputTag("negative"), value)
        yield value


class Count(KeyedProcessFunction):
    def process_element(self, value, ctx):
        yield value


def kinds(env):
    return [(step.uid, step.kind) for step in translate(env.graph).steps]


def refusals(env, local=False):
    with pytest.raises(UntranslatableJob) as caught:
        translate(env.graph, local=local)
    return caught.value.refusals


def test_detector_pipeline_plans_every_node_under_its_uid_with_kinesis_endpoints(client):
    env = StreamExecutionEnvironment()
    graded = (env.from_kinesis("readings", client)
              .key_by(lambda e: (e["machine"], e["sensor"]))
              .thresholded_random_cut_forest(["value"], shingle_size=4))
    graded.sink_to_kinesis("scores", client)
    graded.filter(lambda e: e["ANOMALY_GRADE"] >= 0.5).sink_to_kinesis("alerts", client)
    plan = translate(env.graph)
    assert [(s.uid, s.kind) for s in plan.steps] == [
        ("0-kinesis", "kinesis_source"), ("1-key_by", "key_by"),
        ("2-thresholded_rcf", "thresholded_rcf"), ("3-sink", "kinesis_sink"),
        ("4-filter", "filter"), ("5-sink", "kinesis_sink")]
    assert plan.endpoints() == {ENDPOINT}
    assert [s.keyed for s in plan.steps] == [False, False, True, False, False, False]
    assert plan.notes == []


def test_windows_side_outputs_unions_and_keyed_state_are_translated(client):
    strategy = (WatermarkStrategy.for_bounded_out_of_orderness(5)
                .with_timestamp_assigner(lambda e, _: e["t"]))
    env = StreamExecutionEnvironment()
    a = env.from_kinesis("a", client, watermark_strategy=strategy)
    b = env.from_collection([{"k": "x", "t": 1}], timestamps=[1.0])
    merged = a.union(b).process(Tag())
    late = OutputTag("late")
    windowed = (merged.key_by(lambda e: e["k"]).window(TumblingEventTimeWindows.of(10))
                .allowed_lateness(2).side_output_late_data(late)
                .reduce(lambda x, y: x))
    windowed.get_side_output(late).sink_to_kinesis("late", client)
    merged.get_side_output(OutputTag("negative")).print()
    keyed = merged.key_by(lambda e: e["k"])
    keyed.window(SlidingEventTimeWindows.of(10, 5)).reduce(lambda x, y: x).print()
    keyed.window(EventTimeSessionWindows.with_gap(3)).reduce(lambda x, y: x).print()
    keyed.count_window(3, 1).reduce(lambda x, y: x).print()
    keyed.process(Count()).flat_map(lambda e: [e]).key_by(str).random_cut_forest(["t"]).print()
    plan = translate(env.graph)
    assert [s.kind for s in plan.steps].count("window") == 3
    assert {"union", "process", "side_output", "count_window", "keyed_process",
            "random_cut_forest", "print_sink", "collection_source"} <= \
        {s.kind for s in plan.steps}
    sides = [s for s in plan.steps if s.kind == "side_output"]
    assert sorted(s.side for s in sides) == ["late", "negative"]
    # the Python timestamp assigner runs after the Java source: said, not hidden
    assert len(plan.notes) == 1 and "0-kinesis" in plan.notes[0]


@pytest.mark.parametrize("build, uid, words", [
    (lambda env, c: env.from_generator(lambda: iter([1])).print(),
     "0-generator", "generator is Python state"),
    (lambda env, c: env.from_file("/tmp/x.jsonl").print(), "0-file", "may not be on the Flink"),
    (lambda env, c: env.from_kinesis("s", c, deserializer=bytes.decode).print(),
     "0-kinesis", "custom deserializer"),
    (lambda env, c: env.from_collection([1]).collect(), "1-sink", "write them to a Kinesis"),
    (lambda env, c: env.from_collection([1]).write_to_file("/tmp/out.jsonl"),
     "1-sink", "FileSink is not a sink"),
    (lambda env, c: env.from_collection([1]).sink_to(Sink()), "1-sink", "Sink is not a sink"),
    (lambda env, c: env.from_collection([1]).key_by(str)
     .pattern(Pattern.begin("a").where(bool)).print(), "2-pattern", "Flink CEP"),
    (lambda env, c: env.from_collection([1]).join(env.from_collection([2])).where(str)
     .equal_to(str).window(TumblingEventTimeWindows.of(1)).apply(max).print(),
     "2-window_join", "window joins"),
    (lambda env, c: env.from_collection([1]).key_by(str)
     .interval_join(env.from_collection([2]).key_by(str)).between(0, 1).process(max)
     .print(), "4-interval_join", "interval joins"),
    (lambda env, c: env.from_collection([1]).connect(env.from_collection([2]))
     .process(None).print(), "2-co_process", "connected streams"),
    (lambda env, c: env.from_collection([{"x": 1}]).predict(["x"], model="m:1").print(),
     "1-predict", "model inference"),
    (lambda env, c: env.from_collection([1]).key_by(str).window(GlobalWindows.create())
     .trigger(CountTrigger.of(2)).reduce(max).print(), "2-global_window", "count_window"),
    (lambda env, c: env.from_collection([1]).key_by(str).window(GlobalWindows.create())
     .trigger(ContinuousEventTimeTrigger.of(5)).reduce(max).print(), "2-global_window",
     "per key and per interval"),
])
def test_untranslatable_steps_are_refused_naming_the_node_and_the_reason(build, uid, words,
                                                                          client):
    env = StreamExecutionEnvironment()
    build(env, client)
    found = refusals(env)
    assert [r[0] for r in found] == [uid]
    assert words in found[0][2]


def test_in_process_stream_store_is_refused_for_source_and_sink(tmp_path):
    from forestream.streams.store import StreamStore

    store = StreamStore(tmp_path, fsync=False, status_delay=0.0)
    try:
        env = StreamExecutionEnvironment()
        env.from_kinesis("a", store).sink_to_kinesis("b", store)
        found = refusals(env)
    finally:
        store.close()
    assert [uid for uid, _, _ in found] == ["0-kinesis"]  # the sink follows a refused node
    assert "kinesis_client()" in found[0][2]
    env = StreamExecutionEnvironment()
    store = StreamStore(tmp_path / "2", fsync=False, status_delay=0.0)
    try:
        env.from_collection([1]).sink_to_kinesis("b", store)
        assert [r[:2] for r in refusals(env)] == [("1-sink", "sink")]
    finally:
        store.close()


def test_every_refused_node_is_named_once_and_its_consumers_are_not(client):
    env = StreamExecutionEnvironment()
    env.from_generator(lambda: iter([1])).map(str).print()
    env.from_collection([1]).write_to_file("/tmp/never.jsonl")
    with pytest.raises(UntranslatableJob) as caught:
        translate(env.graph)
    assert [r[0] for r in caught.value.refusals] == ["0-generator", "4-sink"]
    message = str(caught.value)
    assert message.startswith("this job cannot run on Flink: 0-generator (generator): ")
    assert "4-sink (sink): " in message and "1-map" not in message
    assert isinstance(caught.value, ApplicationError)  # a 400 on the REST API


def test_json_loads_as_deserializer_is_the_default_and_translates(client):
    env = StreamExecutionEnvironment()
    env.from_kinesis("a", client, deserializer=json.loads).sink_to_kinesis("b", client)
    assert [s.kind for s in translate(env.graph).steps] == ["kinesis_source", "kinesis_sink"]


def test_collect_is_allowed_only_for_local_runs(client):
    env = StreamExecutionEnvironment()
    env.from_collection([1, 2]).map(str).collect()
    assert [s.kind for s in translate(env.graph, local=True).steps] == [
        "collection_source", "map", "collect_sink"]
    assert refusals(env)[0][0] == "2-sink"


def test_dry_run_plans_the_quickstart_application_code_in_a_child_process(tmp_path):
    (tmp_path / "job.py").write_text(APP_CODE)
    properties = {"detector": {"input": "readings", "scores": "scores", "alerts": "alerts",
                               "alert_grade": 0.5, "shingle_size": 4}}
    answer = dry_translate(tmp_path, "job.py", properties, endpoint=ENDPOINT)
    assert [row["flink"] for row in answer["plan"]] == [
        "kinesis_source", "key_by", "thresholded_rcf", "kinesis_sink", "filter",
        "kinesis_sink"]
    json.dumps(answer)  # what the REST API returns


def test_dry_run_refuses_with_the_translation_reason_and_reports_build_errors(tmp_path):
    (tmp_path / "gen.py").write_text(textwrap.dedent("""
        def build(env, properties):
            env.from_generator(lambda: iter(range(3))).print()
    """))
    with pytest.raises(ApplicationError, match=r"0-generator \(generator\): a generator"):
        dry_translate(tmp_path, "gen.py", {})
    (tmp_path / "broken.py").write_text(textwrap.dedent("""
        def build(env, properties):
            raise KeyError("input")
    """))
    with pytest.raises(ApplicationError, match=r"build\(env, properties\) of broken.py "
                                               r"failed: KeyError: 'input'"):
        dry_translate(tmp_path, "broken.py", {})


@pytest.mark.slow
def test_every_translated_step_gives_the_embedded_runtime_s_records_on_pyflink(tmp_path):
    """One job with process functions (value, list and map state, timers, side outputs),
    rolling reduce, tumbling windows with lateness and a late side output, sliding and
    session windows, count windows, flat_map/filter/map/union and both RCF operators, on
    a collection: PyFlink's local executor and the embedded runtime give the same records
    (values, event times, keys and ids) at every collect() sink."""
    import pickle
    import shutil
    import subprocess

    from forestream.processing.operators import SinkOperator
    from forestream.processing.sinks import ListSink
    from forestream.processing.worker import load_user_module

    if shutil.which("java") is None:
        pytest.skip("a JDK is needed to run PyFlink")
    from forestream.processing.flink.install import flink_python

    job = Path(__file__).parent / "app_jobs" / "operators.py"
    out = tmp_path / "flink.pickle"
    done = subprocess.run([str(flink_python()), "-m", "forestream.processing.flink.job.local",
                           str(job), str(out)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    on_flink = pickle.loads(out.read_bytes())
    module = load_user_module(job.parent, job.name)
    env = StreamExecutionEnvironment()
    module.build(env, {})
    env.execute()
    embedded = {node.uid: [(r.value, r.timestamp, r.key, r.rid) for r in node.operator.sink.records]
                for node in env.nodes if isinstance(node.operator, SinkOperator)
                and isinstance(node.operator.sink, ListSink)}
    assert set(on_flink) == set(embedded)
    for uid, records in embedded.items():
        assert sorted(on_flink[uid], key=lambda r: r[3]) == sorted(records, key=lambda r: r[3]), \
            uid
    assert sum(len(records) for records in embedded.values()) > 900
