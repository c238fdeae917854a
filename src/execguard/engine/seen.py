"""The engine's memory of alerts already emitted: a fixed-size set of 64-bit key digests, oldest out first.

An audit event is logged once per stage (RequestReceived, ResponseStarted, ResponseComplete, Panic) and
the engine alerts on the first only, so it remembers the last ``limit`` alert keys. The keys were tuples
of four strings (~260 bytes each): 200 000 of them grew watch by ~50 MB over 80 minutes at 40 alerts/s.
Here every structure is allocated, and touched, on the first key: an open-addressing table of digests
(linear probing, at most half full) and a ring of the same digests in arrival order, ~5.6 MB for 200 000
keys, so the memory is flat from the first alert on.

A digest is Python's 64-bit ``hash`` of the key tuple: SipHash of each string, keyed per process, so it
cannot be chosen from outside, and it is never stored or compared across processes. Two live keys share
a digest with probability about n² / 2^65 (n = 200 000: ~1e-9 over the whole memory, ~1e-14 per new key),
and a shared digest costs one alert that would have been folded into another; astronomically unlikely.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable

_MASK64 = (1 << 64) - 1


class SeenKeys:
    """At most ``limit`` keys; ``add`` says whether a key is new and forgets the oldest once full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        size = 8
        while size < 2 * limit:  # at most half full: probes stay short (~1.3 for a key present, ~1.8 for a new one)
            size *= 2
        self._mask = size - 1
        self._size = size
        self._table: array[int] = array("Q")  # digest per slot, 0 = empty; allocated on the first add
        self._ring: array[int] = array("Q")  # digests in arrival order, for forgetting the oldest
        self._next = 0  # ring slot the next key goes to (and the oldest key once the ring is full)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def table_bytes(self) -> int:
        """Bytes held for keys: 0 before the first ``add``, then the same whatever the number of keys."""
        return self._table.itemsize * len(self._table) + self._ring.itemsize * len(self._ring)

    def add(self, key: Hashable) -> bool:
        """True when ``key`` was not among the remembered ones (it is now); False when it was."""
        table = self._table
        if not table:  # hunt's worker processes never add: allocate here, not in __init__
            table = self._table = array("Q", [0]) * self._size  # written whole now: RSS does not creep up later
            self._ring = array("Q", [0]) * self.limit
        digest = (hash(key) & _MASK64) or 1  # 0 marks an empty slot
        mask = self._mask
        i = digest & mask
        while True:
            value = table[i]
            if value == digest:
                return False
            if not value:
                break
            i = (i + 1) & mask
        if self._count == self.limit:
            self._remove(self._ring[self._next])
            i = digest & mask  # removal may have moved entries: probe again
            while table[i]:
                i = (i + 1) & mask
        else:
            self._count += 1
        table[i] = digest
        self._ring[self._next] = digest
        self._next = (self._next + 1) % self.limit
        return True

    def _remove(self, digest: int) -> None:
        """Take ``digest`` out of the table, moving later entries of its run back (no tombstones)."""
        table, mask = self._table, self._mask
        hole = digest & mask
        while table[hole] != digest:
            hole = (hole + 1) & mask
        table[hole] = 0
        i = hole
        while True:
            i = (i + 1) & mask
            value = table[i]
            if not value:
                return
            home = value & mask
            # the entry may fill the hole unless its home lies cyclically in (hole, i]
            if (hole < i and (home <= hole or home > i)) or (hole > i and home <= hole and home > i):
                table[hole] = value
                table[i] = 0
                hole = i
