"""Streams on a NATS JetStream cluster: the store's records and metadata replicated by
the cluster, so several ``forestream server`` front ends share them (see
docs/streams.md, "Beyond one machine").

- :mod:`.bridge`: a synchronous handle on a NATS connection (nats-py runs on asyncio);
- :mod:`.shard_log`: a shard as a JetStream stream, with the segment log's interface.
"""
