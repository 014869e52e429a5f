"""The JetStream storage backend: records, metadata and secrets in a NATS cluster.

``StreamStore(data_dir, backend=JetStreamBackend(["nats://h1:4222", ...], replicas=3))``
— or ``forestream server --streams nats://h1:4222,h2:4222,h3:4222 --replicas 3``. Every
front end on the same cluster (and namespace) serves the same streams: metadata is in the
bucket ``<namespace>-meta`` (see :mod:`.metadata`), each shard is the JetStream stream
``<namespace>_<stream>_<shard number>`` (see :mod:`.shard_log`), and the secret that
signs shard iterators is shared, so an iterator taken from one front end is good on any.

Encryption at rest: records are sealed (AES-256-GCM) by the front end before they reach
the cluster. Each stream's data key is kept in the bucket wrapped (AES-GCM) with a master
key that only the front ends hold (``--streams-key-file``, 32 bytes); without one,
StartStreamEncryption is refused.
"""

from __future__ import annotations

import contextlib
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..crypto import KEY_BYTES
from ..errors import KMSError
from .bridge import NatsBridge
from .metadata import KvMetadata
from .shard_log import JetStreamApi, JetStreamError, JetStreamShardLog, token

DEFAULT_NAMESPACE = "forestream"
ITERATOR_SECRET_KEY = "secret.iterator"


class ClusterKeyStore:
    """Per-stream data keys in the metadata bucket, wrapped with the front ends' master
    key (the :class:`~forestream.streams.crypto.KeyStore` interface)."""

    def __init__(self, metadata: KvMetadata, master_key: bytes | None) -> None:
        if master_key is not None and len(master_key) != KEY_BYTES:
            raise ValueError(f"the streams master key must be {KEY_BYTES} bytes, "
                             f"not {len(master_key)}")
        self.metadata = metadata
        self.master = AESGCM(master_key) if master_key is not None else None
        self._cache: dict[str, AESGCM] = {}

    def key_for(self, stream: str, create: bool = False) -> AESGCM | None:
        cipher = self._cache.get(stream)
        if cipher is not None:
            return cipher
        name = f"key.{stream}"
        wrapped = self.metadata.get_value(name)
        if wrapped is None and not create:
            return None
        if self.master is None:
            raise KMSError(f"stream {stream}: encryption on the JetStream backend needs the "
                           "front ends' master key (forestream server --streams-key-file "
                           "FILE, 32 random bytes, the same file on every front end)")
        if wrapped is None:
            nonce = os.urandom(12)
            key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
            proposal = nonce + self.master.encrypt(nonce, key, name.encode())
            wrapped = self.metadata.create_value(name, proposal)  # another front end's wins
        key = self.master.decrypt(wrapped[:12], wrapped[12:], name.encode())
        cipher = AESGCM(key)
        self._cache[stream] = cipher
        return cipher

    def forget(self, stream: str) -> None:
        self._cache.pop(stream, None)
        self.metadata.delete_value(f"key.{stream}")


class JetStreamBackend:
    """See the module doc. ``servers``: NATS URLs of the cluster's nodes."""

    name = "jetstream"
    #: appends through other front ends are not announced here: waiting readers look again
    arrival_poll_seconds: float | None = 0.05

    def __init__(self, servers: list[str], *, replicas: int = 1,
                 namespace: str = DEFAULT_NAMESPACE, master_key: bytes | None = None
                 ) -> None:
        if not 1 <= replicas <= 5:
            raise ValueError(f"replicas must be 1 to 5 (JetStream's range), not {replicas}")
        self.servers = servers
        self.replicas = replicas
        self.namespace = namespace
        self.bridge = NatsBridge(servers, name=f"forestream-{namespace}")
        self.api = JetStreamApi(self.bridge)
        self._metadata = KvMetadata(self.bridge, namespace, replicas)
        self._keys = ClusterKeyStore(self._metadata, master_key)
        self.iterator_secret = self._metadata.create_value(ITERATOR_SECRET_KEY,
                                                           secrets.token_bytes(32))

    @property
    def metadata(self) -> KvMetadata:
        return self._metadata

    @property
    def keys(self) -> ClusterKeyStore:
        return self._keys

    def open_log(self, stream: str, number: int) -> JetStreamShardLog:
        return JetStreamShardLog(self.api, self.namespace, stream, number, self.replicas)

    def delete_log(self, stream: str, number: int) -> None:
        name = f"{self.namespace}_{token(stream)}_{number}"
        with contextlib.suppress(JetStreamError):
            self.api.request(f"$JS.API.STREAM.DELETE.{name}")

    def seal_log(self, log: object) -> None:
        if isinstance(log, JetStreamShardLog):
            log.seal()

    def forget_stream_storage(self, stream: str) -> None:
        """Delete shard streams a deleted stream of this name left behind."""
        answer = self.api.request("$JS.API.STREAM.NAMES", {
            "subject": f"{self.namespace}.{token(stream)}.*"})
        for name in answer.get("streams") or []:
            with contextlib.suppress(JetStreamError):
                self.api.request(f"$JS.API.STREAM.DELETE.{name}")

    def remove_orphans(self, known: set[str]) -> None:
        """Nothing: another front end may be creating a stream right now."""

    def close(self) -> None:
        self._metadata.close()
        self.bridge.close()
