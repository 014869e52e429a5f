"""State lives in memory: a job that outgrows its memory limit stops with a clear error
naming the limitation (and keeps its last checkpoint) instead of being killed."""

from __future__ import annotations

import pytest

from forestream.processing import (
    KeyedProcessFunction,
    ListStateDescriptor,
    StateMemoryError,
    StreamExecutionEnvironment,
)
from forestream.processing.runtime import resident_mb


class Hoard(KeyedProcessFunction):
    """Keeps 1 MiB per record in keyed state, forever."""

    def open(self, runtime_context):
        self.kept = runtime_context.get_list_state(ListStateDescriptor("kept"))

    def process_element(self, value, ctx):
        self.kept.add(bytearray(1 << 20))
        yield value


def test_state_past_the_memory_limit_stops_the_job_with_a_named_error(tmp_path):
    limit = resident_mb() + 64
    env = StreamExecutionEnvironment(batch_size=16, memory_limit_mb=limit,
                                     checkpoint_dir=tmp_path / "ck", checkpoint_interval=3600)
    env.from_generator(lambda: iter(range(100_000))).key_by(lambda v: v % 7) \
        .process(Hoard()).add_sink(lambda v: None)
    with pytest.raises(StateMemoryError) as info:
        env.execute("hoarder")
    message = str(info.value)
    assert "hoarder" in message and f"{limit:,.0f} MiB" in message
    assert "no spilling backend" in message and "last checkpoint is intact" in message
    assert any((tmp_path / "ck").iterdir())  # the initial checkpoint is still there


def test_memory_limit_is_validated_and_can_be_switched_off(monkeypatch):
    with pytest.raises(ValueError, match="memory_limit_mb -1"):
        StreamExecutionEnvironment(memory_limit_mb=-1)
    assert StreamExecutionEnvironment(memory_limit_mb=0).memory_limit_mb == 0
    monkeypatch.setenv("FORESTREAM_MEMORY_LIMIT_MB", "lots")
    with pytest.raises(ValueError, match="FORESTREAM_MEMORY_LIMIT_MB='lots'"):
        StreamExecutionEnvironment()
    monkeypatch.setenv("FORESTREAM_MEMORY_LIMIT_MB", "512")
    assert StreamExecutionEnvironment().memory_limit_mb == 512
