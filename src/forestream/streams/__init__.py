"""forestream.streams — durable, sharded data streams (Kinesis Data Streams semantics).

A stream has shards; each shard owns a contiguous range of the 128-bit hash-key space and
keeps its records in an append-only :class:`SegmentLog`. Metadata lives in SQLite.
"""
