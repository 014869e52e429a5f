"""The struct-of-arrays state of a forest, and its exact byte serialization."""

from __future__ import annotations

import io
import json
import threading
import zipfile
import zlib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from forestream.priority import lower_this_thread

from ._memory import zeroed
from ._rng import seed_states
from ._tree import EMPTY, LEAF_FIELDS, NODE_FIELDS, ROOT, TREE_FIELDS

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    import numpy.typing as npt

    from ._jit import Float64Array, Int32Array, UInt64Array

MAGIC = b"FSRCF\x01"
#: The raw layout (``compress=False``): a JSON header naming each array's dtype and shape,
#: then the arrays' bytes back to back — a memcpy each way, for checkpoints, which
#: compress the whole snapshot themselves.
MAGIC_RAW = b"FSRCF\x02"
# a node record (see ForestState.__post_init__): 8 int32 words, then the box
_RECORD_HEAD = 8
_CUT_AT = 3  # in float64 words
_BOX_AT = 4
_RAW_DTYPES = {"<i4": np.int32, "<f8": np.float64, "<u8": np.uint64}


@dataclass
class ForestState:
    """All arrays of a forest of ``T`` trees, sample size ``S``, point width ``D``.

    Attributes are ordered as the kernels take them (see :meth:`kernel_args`).
    """

    nodes: Int32Array  # int32[T, S, NODE_FIELDS]: left, right, parent, cut dim, mass
    cut_values: Float64Array  # float64[T, S]
    boxes: Float64Array  # float64[T, S, 2, D]: low and high corner of each node's box
    leaves: Int32Array  # int32[T, S, LEAF_FIELDS]: mass, parent
    leaf_point: Float64Array  # float64[T, S, D]
    free_nodes: Int32Array  # int32[T, S]: stack of unused internal node ids
    free_leaves: Int32Array  # int32[T, S]: stack of unused leaf ids
    trees: Int32Array  # int32[T, TREE_FIELDS]: root, free-node count, free-leaf count, heap size
    heap_keys: Float64Array  # float64[T, S]: sampler keys, a max-heap per tree
    heap_leaves: Int32Array  # int32[T, S]: the leaf holding each sampled point
    rng: UInt64Array  # uint64[T]: one generator state per tree

    def __post_init__(self) -> None:
        """Move every array into one arena, each internal node's fields, cut value and box
        side by side.

        The fields stay separate arrays to the kernels and to serialization, but as views:
        the node records are ``[left, right, parent, cut dim, mass, -, cut value (2
        words), box (2·D float64)]``, 32 + 16·D bytes, so a walk down a tree reads one
        cache line per node where three separate arrays cost three; a copy (a checkpoint's
        snapshot, a rewind) is one memcpy of the arena.
        """
        t, s = self.nodes.shape[:2]
        d = self.boxes.shape[-1]
        if self.nodes.shape != (t, s, NODE_FIELDS) or self.cut_values.shape != (t, s) \
                or self.boxes.shape != (t, s, 2, d):
            raise ValueError(f"node arrays' shapes disagree: nodes {self.nodes.shape}, "
                             f"cut values {self.cut_values.shape}, boxes {self.boxes.shape}")
        layout = _arena_layout(t, s, d)
        views = _arena_views(zeroed(layout[-1][0]), layout)  # huge pages: see _memory
        nodes, cut_values, boxes = _record_views(views["records"])
        nodes[...] = self.nodes
        cut_values[...] = self.cut_values
        boxes[...] = self.boxes
        self.nodes, self.cut_values, self.boxes = nodes, cut_values, boxes
        for name in _OTHER_ARRAYS:
            views[name][...] = getattr(self, name)
            setattr(self, name, views[name])

    @classmethod
    def empty(cls, num_trees: int, sample_size: int, point_dims: int, seed: int) -> ForestState:
        t, s, d = num_trees, sample_size, point_dims
        ids = np.arange(s - 1, -1, -1, dtype=np.int32)
        trees = np.zeros((t, TREE_FIELDS), dtype=np.int32)
        trees[:, ROOT] = EMPTY
        trees[:, 1] = s
        trees[:, 2] = s
        return cls(
            nodes=np.zeros((t, s, NODE_FIELDS), dtype=np.int32),
            cut_values=np.zeros((t, s), dtype=np.float64),
            boxes=np.zeros((t, s, 2, d), dtype=np.float64),
            leaves=np.zeros((t, s, LEAF_FIELDS), dtype=np.int32),
            leaf_point=np.zeros((t, s, d), dtype=np.float64),
            free_nodes=np.tile(ids, (t, 1)),
            free_leaves=np.tile(ids, (t, 1)),
            trees=trees,
            heap_keys=np.zeros((t, s), dtype=np.float64),
            heap_leaves=np.zeros((t, s), dtype=np.int32),
            rng=seed_states(seed, t),
        )

    def kernel_args(self) -> tuple[npt.NDArray[Any], ...]:
        """The arrays in the order the update kernel takes them."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def _shape(self) -> tuple[int, int, int]:
        """(trees, sample size, point width): what fixes the arena's layout."""
        t, s = self.nodes.shape[:2]
        return t, s, self.boxes.shape[-1]

    def _arena(self) -> npt.NDArray[np.uint8]:
        """The bytes of this state's arena, exactly: numpy's ``base`` of a view is the
        whole mapping :func:`zeroed` carved the aligned arena out of (larger, and
        starting up to a huge page earlier), so the arena is cut out of it again."""
        base = self.nodes.base
        assert isinstance(base, np.ndarray)  # __post_init__ and copy made it so
        start = self.nodes.ctypes.data - base.ctypes.data  # the node records come first
        size = _arena_layout(*self._shape())[-1][0]
        arena = base.reshape(-1).view(np.uint8)[start : start + size]
        assert arena.size == size
        return arena

    def copy(self, spare: bool = False) -> ForestState:
        """A deep copy: the arena in one memcpy (into memory like the original's, as a
        copy may become the live forest again: a rewind).

        With ``spare``, the copy reuses an arena handed back with :func:`keep_spare`
        when one of this size is kept: a rewind point taken for every batch would
        otherwise map, fault in and free megabytes each time (~5 ms for the default
        detector's two forests against ~1 ms for the memcpy alone)."""
        arena = self._arena()
        if spare:
            twin = _take_spare(self._shape())
            if twin is not None:
                np.copyto(twin._arena(), arena)
                return twin
        layout = _arena_layout(*self._shape())
        copied = zeroed(arena.size)
        np.copyto(copied, arena)
        views = _arena_views(copied, layout)
        twin = object.__new__(ForestState)  # not through __post_init__: laid out already
        twin.nodes, twin.cut_values, twin.boxes = _record_views(views["records"])
        for name in _OTHER_ARRAYS:
            setattr(twin, name, views[name])
        return twin


#: Arenas handed back for reuse, by forest shape. A checkpoint copies every forest at its
#: barrier and drops the copies once serialized; a rewind point is taken before each
#: batch. Mapping, faulting in and unmapping megabytes for each is what made those
#: copies slow (12 default detectors: 180-330 ms on the processing thread against 15 ms
#: into reused arenas), so the arenas are kept for the next round. Keeping them does not
#: raise the process's peak memory — each round needs them again — only holds it: as
#: many of a shape as checkpointed forests of that shape live (:func:`prepare_spare`,
#: :func:`forget_spare`) plus :data:`REWIND_SPARES`, and this many bytes in all.
SPARE_BYTES = 1 << 30
#: Spares kept of each shape for rewind points alone (one per thread scoring a batch).
REWIND_SPARES = 4
_SPARES: dict[tuple[int, int, int], list[ForestState]] = {}
_CHECKPOINTED: dict[tuple[int, int, int], int] = {}  # live forests whose copies are kept
_SPARES_LOCK = threading.Lock()
_spare_bytes = 0
_wanted: list[tuple[int, int, int]] = []
_maker: threading.Thread | None = None


def _cap(shape: tuple[int, int, int]) -> int:
    return _CHECKPOINTED.get(shape, 0) + REWIND_SPARES


def keep_spare(state: ForestState) -> None:
    """Hand back a state nothing refers to any more (a discarded rewind point, the live
    state a rewind replaced, a checkpoint's copy once serialized) for
    :meth:`ForestState.copy` to reuse; beyond what is kept it is left to be freed."""
    global _spare_bytes
    size = state._arena().size
    shape = state._shape()
    with _SPARES_LOCK:
        kept = _SPARES.setdefault(shape, [])
        if len(kept) < _cap(shape) and _spare_bytes + size <= SPARE_BYTES:
            kept.append(state)
            _spare_bytes += size


def prepare_spare(state: ForestState) -> None:
    """A forest whose every checkpoint will copy it: keep one more arena of its shape
    from now on, and have it made and faulted in off the calling thread (a checkpoint's
    first round would otherwise map every forest's copy on the processing thread: 12
    default detectors, 180-330 ms there). :func:`forget_spare` when the forest goes."""
    global _maker
    shape = state._shape()
    with _SPARES_LOCK:
        _CHECKPOINTED[shape] = _CHECKPOINTED.get(shape, 0) + 1
        _wanted.append(shape)
        if _maker is None:  # the maker clears it, under the lock, as it stops
            _maker = threading.Thread(target=_make_spares, name="forest-spares", daemon=True)
            _maker.start()


def forget_spare(state: ForestState) -> None:
    """A forest :func:`prepare_spare` counted is gone (its operator closed, or replaced
    its models on a restore): one arena of its shape fewer is kept."""
    global _spare_bytes
    shape = state._shape()
    with _SPARES_LOCK:
        left = _CHECKPOINTED.get(shape, 0) - 1
        if left > 0:
            _CHECKPOINTED[shape] = left
        else:
            _CHECKPOINTED.pop(shape, None)
        kept = _SPARES.get(shape, [])
        while len(kept) > _cap(shape):
            _spare_bytes -= kept.pop()._arena().size


def _make_spares() -> None:
    global _maker
    lower_this_thread(5)  # behind the threads that process records
    try:
        while True:
            with _SPARES_LOCK:
                if not _wanted or _spare_bytes >= SPARE_BYTES:
                    _wanted.clear()
                    _maker = None
                    return
                shape = _wanted.pop()
                if len(_SPARES.get(shape, ())) >= _cap(shape):
                    continue  # copies handed back since fill it already
            keep_spare(ForestState.empty(*shape, seed=0))  # every array written: faulted in
    finally:  # stopped by an error (out of memory, say): the next request starts another
        with _SPARES_LOCK:
            if _maker is threading.current_thread():
                _maker = None


def _take_spare(shape: tuple[int, int, int]) -> ForestState | None:
    global _spare_bytes
    with _SPARES_LOCK:
        kept = _SPARES.get(shape)
        if not kept:
            return None
        state = kept.pop()
        _spare_bytes -= state._arena().size
        return state


#: the arrays after the node records, in arena order (as ForestState's fields)
_OTHER_ARRAYS = ("leaves", "leaf_point", "free_nodes", "free_leaves", "trees", "heap_keys",
                 "heap_leaves", "rng")
_ALIGN = 64  # each array starts on a cache line's offset


def _arena_layout(t: int, s: int, d: int) -> list[tuple[int, str, tuple[int, ...], Any]]:
    """(offset, name, shape, dtype) of each array in a forest's arena; the last entry is
    the end ``(size, "", (), None)``."""
    shapes: list[tuple[str, tuple[int, ...], Any]] = [
        ("records", (t, s, _RECORD_HEAD + 4 * d), np.int32),
        ("leaves", (t, s, LEAF_FIELDS), np.int32), ("leaf_point", (t, s, d), np.float64),
        ("free_nodes", (t, s), np.int32), ("free_leaves", (t, s), np.int32),
        ("trees", (t, TREE_FIELDS), np.int32), ("heap_keys", (t, s), np.float64),
        ("heap_leaves", (t, s), np.int32), ("rng", (t,), np.uint64)]
    layout = []
    offset = 0
    for name, shape, dtype in shapes:
        layout.append((offset, name, shape, dtype))
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        offset += -(-size // _ALIGN) * _ALIGN
    layout.append((offset, "", (), None))
    return layout


def _arena_views(arena: npt.NDArray[np.uint8],
                 layout: list[tuple[int, str, tuple[int, ...], Any]]
                 ) -> dict[str, npt.NDArray[Any]]:
    views = {}
    for (offset, name, shape, dtype), (end, *_) in zip(layout, layout[1:], strict=False):
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        views[name] = arena[offset : offset + size].view(dtype).reshape(shape)
        assert offset + size <= end
    return views


def _record_views(records: Int32Array) -> tuple[Int32Array, Float64Array, Float64Array]:
    """The nodes, cut values and boxes inside a buffer of node records (int32[T, S, 8 + 4·D])."""
    t, s, words = records.shape
    d = (words - _RECORD_HEAD) // 4
    wide = records.view(np.float64)  # [T, S, words / 2]
    return (records[:, :, :NODE_FIELDS], wide[:, :, _CUT_AT],
            wide[:, :, _BOX_AT:].reshape(t, s, 2, d))


def pack(config: Mapping[str, object], state: ForestState,
         extra: Mapping[str, npt.NDArray[Any]], compress: bool = True) -> bytes:
    """Serialize a JSON-able ``config``, the forest arrays and ``extra`` arrays to bytes:
    a zip of ``.npy`` members deflated at level 1 (``np.load`` reads it), or with
    ``compress=False`` the raw layout (:data:`MAGIC_RAW`), ~20x faster to write and read
    and ~2.5x larger."""
    arrays = {f"state.{f.name}": getattr(state, f.name) for f in fields(state)}
    arrays.update({f"extra.{k}": v for k, v in extra.items()})
    if not compress:
        return _pack_raw(config, arrays)
    buffer = io.BytesIO()
    # np.savez_compressed's zip at deflate level 1: the same format, about 3x faster to
    # write, ~10% larger
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
                         ) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    header = json.dumps(config, sort_keys=True).encode()
    return MAGIC + len(header).to_bytes(4, "little") + header + buffer.getvalue()


def _pack_raw(config: Mapping[str, object], arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    layout = [[name, a.dtype.str, list(a.shape)] for name, a in contiguous.items()]
    data = [a.data.cast("B") for a in contiguous.values()]  # no copy of each
    crc = 0
    for part in data:  # a flipped bit is refused on reading, as the zip's CRCs do
        crc = zlib.crc32(part, crc)
    header = json.dumps({"config": config, "arrays": layout, "crc32": crc},
                        sort_keys=True).encode()
    return b"".join([MAGIC_RAW, len(header).to_bytes(4, "little"), header, *data])


def _unpack_raw(blob: bytes) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    n = int.from_bytes(blob[len(MAGIC_RAW) : len(MAGIC_RAW) + 4], "little")
    pos = len(MAGIC_RAW) + 4
    header = json.loads(blob[pos : pos + n])
    pos += n
    if zlib.crc32(memoryview(blob)[pos:]) != header["crc32"]:
        raise ValueError("the arrays' checksum does not match: damaged data")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, dtype, shape in header["arrays"]:
        if dtype not in _RAW_DTYPES or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"array {name!r}: dtype {dtype!r} or shape {shape!r} not allowed")
        count = int(np.prod(shape, dtype=np.int64))
        size = count * np.dtype(_RAW_DTYPES[dtype]).itemsize
        if pos + size > len(blob):
            raise ValueError(f"array {name!r} runs past the end of the data")
        # a writable copy: the kernels update the arrays in place
        arrays[name] = np.frombuffer(blob, _RAW_DTYPES[dtype], count, pos).reshape(shape).copy()
        pos += size
    if pos != len(blob):
        raise ValueError(f"{len(blob) - pos} bytes after the last array")
    return dict(header["config"]), arrays


def unpack(blob: bytes) -> tuple[dict[str, Any], ForestState, dict[str, npt.NDArray[Any]]]:
    """Inverse of :func:`pack`; raises ``ValueError`` on anything that is not a forest."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes from RandomCutForest.to_bytes(), got {type(blob)!r}")
    blob = bytes(blob)
    if not blob.startswith((MAGIC, MAGIC_RAW)):
        raise ValueError("not a serialized forestream RandomCutForest (bad magic header)")
    try:
        if blob.startswith(MAGIC_RAW):
            config, arrays = _unpack_raw(blob)
        else:
            n = int.from_bytes(blob[len(MAGIC) : len(MAGIC) + 4], "little")
            start = len(MAGIC) + 4
            config = json.loads(blob[start : start + n])
            with np.load(io.BytesIO(blob[start + n :]), allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        state = ForestState(**{f.name: arrays[f"state.{f.name}"] for f in fields(ForestState)})
    except (KeyError, ValueError, OSError, EOFError, NotImplementedError, zipfile.BadZipFile,
            zlib.error, TypeError) as exc:
        raise ValueError(f"corrupt serialized RandomCutForest: {exc}") from exc
    extra = {k[len("extra.") :]: v for k, v in arrays.items() if k.startswith("extra.")}
    return config, state, extra
