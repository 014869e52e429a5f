"""Encryption at rest: AES-256-GCM with one key per stream, kept under the data directory.

Stored record values carry a one-byte marker so a stream can switch encryption on and
off: ``0x00`` + plaintext, or ``0x01`` + 12-byte nonce + ciphertext-and-tag. Keys are
files readable only by the owner and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from forestream.durable import write_atomically

PLAIN = 0
ENCRYPTED = 1
KEY_BYTES = 32


class KeyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, AESGCM] = {}

    def key_for(self, stream: str, create: bool = False) -> AESGCM | None:
        """The stream's cipher; with ``create``, make a key if there is no valid one.

        Keys are written to a temporary file, synced and renamed into place, so a crash
        never leaves a half-written key behind."""
        cipher = self._cache.get(stream)
        if cipher is not None:
            return cipher
        path = self.directory / f"{stream}.key"
        key = path.read_bytes() if path.exists() else b""
        if len(key) != KEY_BYTES:
            if not create:
                return None
            # Nothing can have been encrypted with a missing or unusable key: replace it.
            key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(path, key, mode=0o600)
        cipher = AESGCM(key)
        self._cache[stream] = cipher
        return cipher

    def forget(self, stream: str) -> None:
        """Drop a deleted stream's key (its records are gone too)."""
        self._cache.pop(stream, None)
        (self.directory / f"{stream}.key").unlink(missing_ok=True)


_PLAIN_MARK, _ENCRYPTED_MARK = bytes([PLAIN]), bytes([ENCRYPTED])


def seal(data: bytes, cipher: AESGCM | None, associated: bytes) -> bytes:
    if cipher is None:
        return _PLAIN_MARK + data
    nonce = os.urandom(12)
    return _ENCRYPTED_MARK + nonce + cipher.encrypt(nonce, data, associated)


def unseal(stored: bytes, cipher_for: Callable[[], AESGCM | None],
           associated: bytes) -> tuple[bytes, bool]:
    """Return (data, was_encrypted); ``cipher_for()`` is asked only for encrypted records."""
    if stored[0] == PLAIN:
        return stored[1:], False
    cipher = cipher_for()
    if cipher is None:
        raise KeyError("record is encrypted but the stream's key is missing")
    return cipher.decrypt(stored[1:13], stored[13:], associated), True
