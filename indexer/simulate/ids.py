"""Deterministic hashes, ids, keys and signatures, all derived from the seed.

Two kinds of ids:

* ``Ids.hash(...)``: base58 of SHA-256 over the seed and the given parts; used for everything the
  truth refers to (tracked receipts, transactions, blocks). About 4 us each.
* ``FastIds``: noise needs hundreds of ids per block, so it takes one 44-character base58 hash per
  block and replaces its last three characters with a counter. The result is still base58 of
  exactly 32 bytes (the prefix hash starts with a byte in 0x20..0x7f, far from both the 43-char
  and the 2**256 boundaries) and unique across blocks, at the cost of a string slice.
"""

from __future__ import annotations

import base64
import hashlib
from itertools import product

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ALPHABET_B = ALPHABET.encode()


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58, as NEAR uses for hashes, keys and signatures."""
    n = int.from_bytes(data, "big")
    out = bytearray()
    while n:
        n, r = divmod(n, 58)
        out.append(_ALPHABET_B[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + out[::-1].decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Ids:
    """Seeded digests; the same parts always give the same id."""

    def __init__(self, seed: int):
        self._seed = f"near-intents-sim:{seed}:".encode()
        self._keys: dict[str, str] = {}

    def digest(self, *parts: object) -> bytes:
        return hashlib.sha256(self._seed + "|".join(map(str, parts)).encode()).digest()

    def hash(self, *parts: object) -> str:
        return b58encode(self.digest(*parts))

    def wide_hash(self, *parts: object) -> str:
        """A 44-character hash (first byte in 0x20..0x7f), the prefix ``FastIds`` needs."""
        d = bytearray(self.digest(*parts))
        d[0] = 0x20 + d[0] % 0x60
        return b58encode(bytes(d))

    def public_key(self, account: str) -> str:
        key = self._keys.get(account)
        if key is None:
            key = self._keys[account] = "ed25519:" + b58encode(self.digest("pk", account))
        return key

    def signature(self, *parts: object) -> str:
        return "ed25519:" + b58encode(self.digest("sig-a", *parts) + self.digest("sig-b", *parts))

    def nonce_b64(self, *parts: object) -> str:
        return b64(self.digest("nonce", *parts))

    def implicit_account(self, *parts: object) -> str:
        return self.digest("implicit", *parts).hex()


def _suffixes() -> list[str]:
    return ["".join(p) for p in product(ALPHABET, repeat=3)]


_SUFFIXES: list[str] = []


class FastIds:
    """Up to 58**3 (195,112) unique ids per block from one prefix hash."""

    __slots__ = ("_prefix", "_n")

    def __init__(self, prefix_hash: str):
        global _SUFFIXES
        if not _SUFFIXES:
            _SUFFIXES = _suffixes()
        assert len(prefix_hash) == 44, prefix_hash
        self._prefix = prefix_hash[:41]
        self._n = 0

    def next(self) -> str:
        n = self._n
        if n == 195_112:  # exhausted (a block of tens of MB): continue under a fresh prefix
            d = bytearray(hashlib.sha256(self._prefix.encode()).digest())
            d[0] = 0x20 + d[0] % 0x60
            self._prefix = b58encode(bytes(d))[:41]
            n = 0
        self._n = n + 1
        # a stride coprime with 58**3 visits every suffix once, in an order that does not look sequential
        return self._prefix + _SUFFIXES[(n * 104_729 + 31_337) % 195_112]
