"""Forest arenas in transparent huge pages (forestream.rcf._memory): default-sized forests
start on a 2 MiB boundary in memory advised for huge pages, small ones are not padded,
copies (rewinds, checkpoint snapshots) are laid out like the original, and contents and
scores do not depend on any of it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from forestream.rcf import RandomCutForest, ThresholdedDetector
from forestream.rcf._memory import HUGE_PAGE, MAX_WASTE, zeroed

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _arena_address(forest: RandomCutForest) -> int:
    return forest._state.nodes.ctypes.data  # the node records open the arena


def _smaps_entry(address: int) -> str:
    """This process's /proc/self/smaps block of the mapping holding ``address``."""
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", Path("/proc/self/smaps").read_text()):
        low, high = (int(x, 16) for x in block.split(" ", 1)[0].split("-"))
        if low <= address < high:
            return block
    raise AssertionError(f"no mapping holds {address:#x}")


def test_a_default_forest_starts_on_a_huge_page_boundary_and_its_copy_too():
    forest = RandomCutForest(1, 4, 100, 256, random_seed=1)
    forest.update_many(np.arange(40.0)[:, None])
    twin = forest._state.copy()
    for state in (forest._state, twin):
        assert state.nodes.ctypes.data % HUGE_PAGE == 0
    assert all(np.array_equal(getattr(forest._state, name), getattr(twin, name))
               for name in ("nodes", "cut_values", "boxes", "leaves", "heap_keys", "rng"))


@pytest.mark.skipif(not sys.platform.startswith("linux") or not THP.exists()
                    or "[never]" in THP.read_text(),
                    reason="transparent huge pages are a Linux feature, off here")
def test_the_arena_is_advised_for_huge_pages_where_the_system_offers_them():
    forest = RandomCutForest(1, 1, 100, 256, random_seed=2)  # 2.05 MiB: its whole page
    block = _smaps_entry(_arena_address(forest))
    assert re.search(r"THPeligible:\s+1", block), block


@pytest.mark.parametrize("size", [1, 4096, HUGE_PAGE - 64, 3 * HUGE_PAGE + 1])
def test_zeroed_gives_exactly_the_size_asked_and_zeros(size):
    buffer = zeroed(size)
    assert buffer.shape == (size,) and buffer.dtype == np.uint8 and not buffer.any()
    buffer[:] = 7  # writable to the last byte
    assert int(buffer[-1]) == 7


def test_small_forests_are_not_padded_to_a_huge_page():
    small = RandomCutForest(1, 4, 10, 32, random_seed=3)
    records = small._state.nodes.base
    assert records is not None and records.nbytes < HUGE_PAGE  # the arena, no padding
    assert MAX_WASTE < 1  # nor is a 2.05 MiB one rounded to 4 MiB: its tail stays small


def test_scores_and_bytes_do_not_depend_on_where_the_arena_lives(monkeypatch):
    """The same forest with its arenas in ordinary numpy memory scores and serializes
    identically, to the bit."""
    import forestream.rcf._state as state_module

    rng = np.random.default_rng(4)
    data = np.sin(np.arange(2000) / 15.0)[:, None] + rng.normal(0, 0.05, (2000, 1))
    advised = RandomCutForest(1, 4, 100, 256, random_seed=5)
    scores = advised.score_and_update(data)
    monkeypatch.setattr(state_module, "zeroed", lambda size: np.zeros(size, np.uint8))
    plain = RandomCutForest(1, 4, 100, 256, random_seed=5)
    assert np.array_equal(plain.score_and_update(data), scores)
    assert plain.to_bytes(compress=False) == advised.to_bytes(compress=False)


def test_a_copy_is_exact_when_the_arena_starts_inside_a_larger_mapping(monkeypatch):
    """zeroed() carves an aligned arena out of a larger mapping, at an offset that depends
    on where the kernel put it; copies (checkpoints, rewind points) must copy the arena,
    not the mapping from its start."""
    import forestream.rcf._state as state_module

    def offset_zeroed(size):  # the arena 4 KiB into a larger buffer, as mmap may place it
        return np.zeros(size + 3 * 4096, np.uint8)[4096 : 4096 + size]

    monkeypatch.setattr(state_module, "zeroed", offset_zeroed)
    forest = RandomCutForest(1, 4, 20, 64, random_seed=8)
    forest.score_and_update(np.sin(np.arange(500) / 7.0)[:, None])
    twin = forest.copy()
    assert twin.to_bytes(compress=False) == forest.to_bytes(compress=False)
    again = twin.copy()  # a copy of a copy: same size, same bytes
    assert again._state._arena().size == forest._state._arena().size
    assert again.to_bytes(compress=False) == forest.to_bytes(compress=False)
    data = np.cos(np.arange(300) / 5.0)[:, None]
    assert np.array_equal(again.score_and_update(data), forest.score_and_update(data))


def test_a_discarded_copy_hands_its_memory_to_the_next_copy():
    """Checkpoints copy every forest each round: a copy discarded once serialized lends
    its arena to the next round's copy (no new mapping), which holds exactly the forest's
    state; the discarded copy refuses further use instead of reading reused memory."""
    forest = RandomCutForest(1, 3, 7, 40, random_seed=11)  # a shape no other test uses
    forest.score_and_update(np.sin(np.arange(400) / 6.0)[:, None])
    first = forest.copy(spare=True)
    assert first.to_bytes(compress=False) == forest.to_bytes(compress=False)
    where = first._state._arena().ctypes.data
    first.discard()
    with pytest.raises(AttributeError):
        first.score_and_update(np.zeros((1, 1)))
    forest.score_and_update(np.cos(np.arange(100) / 4.0)[:, None])  # the job goes on
    second = forest.copy(spare=True)
    assert second._state._arena().ctypes.data == where
    assert second.to_bytes(compress=False) == forest.to_bytes(compress=False)
    data = np.sin(np.arange(200) / 3.0)[:, None]
    assert np.array_equal(second.score_and_update(data), forest.score_and_update(data))


def test_memory_prepared_ahead_serves_a_copy_without_mapping_any(monkeypatch):
    """A job that checkpoints prepares its forests' copy memory in the background as keys
    appear, so that the first round's copies map nothing on the processing thread."""
    import time

    import forestream.rcf._state as state_module

    detector = ThresholdedDetector(shingle_size=3, num_trees=9, sample_size=48,
                                   random_seed=2)  # a shape no other test uses
    detector.process_batch(np.sin(np.arange(300) / 5.0), explain=False)
    detector.prepare_copy()
    deadline = time.monotonic() + 60
    while any(not state_module._SPARES.get(f._state._shape()) for f in detector._forests):
        assert time.monotonic() < deadline, "the spare arenas were never made"
        time.sleep(0.01)
    mapped = []
    monkeypatch.setattr(state_module, "zeroed", lambda size: mapped.append(size))
    twin = detector.copy(spare=True)
    assert mapped == []
    assert twin.to_bytes(compress=False) == detector.to_bytes(compress=False)


def test_the_memory_kept_for_copies_follows_the_forests_a_job_checkpoints():
    """As many arenas of a shape are kept as checkpointed forests of that shape live, plus
    a few for rewind points, however many copies are handed back; when the job's
    forests go, so does their memory."""
    import forestream.rcf._state as state_module

    forests = [RandomCutForest(1, 2, 6, 24, random_seed=s) for s in range(3)]  # own shape
    shape = forests[0]._state._shape()
    for forest in forests:
        forest.prepare_copy()
    copies = [f.copy() for f in forests for _ in range(5)]  # more than will be kept
    for copy in copies:
        copy.discard()
    kept = state_module._SPARES[shape]
    assert len(kept) == 3 + state_module.REWIND_SPARES
    for forest in forests:
        forest.forget_copy()
    assert len(state_module._SPARES[shape]) == state_module.REWIND_SPARES
