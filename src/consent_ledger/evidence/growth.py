"""How a checkpoint grows the kept tree without holding up the ledger's writers.

A checkpoint of a large log spends its time reading and hashing events. None of that
needs a lock: events are append-only, and the tree grows from the last signed one. So
:class:`Growth` hashes with no lock held, and takes the database's write lock (on
SQLite, the one lock every writer of the file shares) only for short transactions: one
to keep each page of leaves and the tile roots it completes, and one at the end to store
the signed head; after each page it leaves the lock free for a while (:data:`LOCK_SHARE`).
A writer waits at most for one of those, never for the hashing.

Two checkpoints at once still make one chain. Every one of those transactions first
checks that the last signed checkpoint is still the one this checkpoint grows from
(its *base*), and on PostgreSQL locks the checkpoints table against the other
checkpoint's transactions (writers of events are not held up: they take another
table's lock). A checkpoint that finds a newer head signed stops, and either returns
that head (if it covers at least as much) or grows again from it. Leaves kept beyond the
last signed size are not yet signed by anyone: a checkpoint replaces them with its own.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from consent_ledger.evidence.checkpoint import Checkpoint
from consent_ledger.evidence.leaves import PAGE, leaf_pages
from consent_ledger.evidence.merkle import TILE
from consent_ledger.evidence.merkle import root as merkle_root
from consent_ledger.exceptions import LedgerBusyError
from consent_ledger.model.values import utc_text
from consent_ledger.storage.busy import BUSY_ERRORS, is_busy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from consent_ledger.evidence.integrity import SignedCheckpoint, TamperEvidence
    from consent_ledger.evidence.merkle import TreeBuilder
    from consent_ledger.storage.view_database import Cursor

NO_CHECKPOINT = -1
"""The size of the last checkpoint of a ledger that has none (the empty log's is 0)."""
LOCK_SHARE = 0.5
"""The largest share of its time a checkpoint holds SQLite's write lock keeping leaves.

A writer that finds the lock taken polls for it, at intervals growing to 100 ms; if a
checkpoint took the lock again the moment it let it go, such a writer could miss every
gap, and wait for the whole checkpoint (measured: a second, for 26 transactions). So
after each transaction the checkpoint leaves the lock free for as long as it held it.
On PostgreSQL the checkpoint takes no lock writers need, and does not pause.
"""


@dataclass(frozen=True)
class Base:
    """The last signed checkpoint, which a new one grows from."""

    size: int
    """Its tree size, or :data:`NO_CHECKPOINT`."""
    tree: TreeBuilder
    """Its tree, ready to take the next leaves."""
    after: int
    """The last position it covers."""
    signed: SignedCheckpoint | None


class Growth:
    """Grows one ledger's kept tree from a base, and stores a signed head on top of it."""

    def __init__(self, evidence: TamperEvidence) -> None:
        """Work on the tables of ``evidence``."""
        self._evidence = evidence
        self._database = evidence.database
        self._shares_lock = not evidence.log.is_postgres  # with the ledger's writers

    def grow(self, base: Base, workers: int | None) -> tuple[TreeBuilder, int] | None:
        """Hash the events after ``base`` into its tree, keeping each page as it goes.

        Returns the grown tree and the last position it covers, or None when another
        checkpoint was signed meanwhile. The tree's size is the number of events read:
        every event up to the last one read was committed when it was read, and a later
        event takes a later position (SQLite rowids and, under the table lock every
        PostgreSQL insert takes, sequence values are handed out in commit order; events
        are never deleted), so no event can appear later inside what the tree covers.

        Each tile the new leaves complete has its root kept (and any tile a ledger
        checkpointed before tiles were kept, from its kept leaves).
        """
        tree, after = base.tree, base.after
        tiles, completed = self._untiled(tree.size)
        with leaf_pages(self._evidence.log, after, workers=workers) as pages:
            for positions, digests, root in pages:
                first = tree.size
                if root is not None and first % len(digests) == 0:
                    tree.append_subtree(root, len(digests))  # hashed once, where it was read
                else:
                    tree.extend(digests)
                leaves = [
                    (first + i, p, d)
                    for i, (p, d) in enumerate(zip(positions, digests, strict=True))
                ]
                if not self._keep(base.size, leaves, completed + tiles.add(digests)):
                    return None
                completed, after = [], positions[-1]
        if completed and not self._keep(base.size, [], completed):
            return None
        return tree, after

    def store(
        self, base: Base, tree: TreeBuilder, after: int, sign: Callable[[Checkpoint], str]
    ) -> tuple[str, str] | None:
        """Sign ``tree``'s head and store it, if ``base`` is still the last checkpoint.

        Returns the stored (note, signed_at). If another checkpoint was signed since
        ``base``, that one's is returned when it covers at least as much as ``tree``,
        and None (grow again from it) when it covers less: nothing is signed then.
        """
        evidence = self._evidence
        with self._writing() as cursor:
            rows = cursor.execute(
                f"SELECT tree_size, note, signed_at FROM {evidence.checkpoints_table} "  # noqa: S608 (a table name of ours)
                "ORDER BY tree_size DESC LIMIT 1"
            )
            if (rows[0][0] if rows else NO_CHECKPOINT) != base.size:
                if not rows or rows[0][0] < tree.size:
                    return None
                return str(rows[0][1]), str(rows[0][2])
            head = Checkpoint(evidence.origin, tree.size, tree.root())
            note, signed_at = sign(head), utc_text(datetime.now(UTC))
            cursor.execute(
                f"INSERT INTO {evidence.checkpoints_table} "  # noqa: S608 (a table name of ours)
                "(tree_size, root, frontier, last_position, note, signed_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (tree.size, head.root, b"".join(tree.frontier), after, note, signed_at),
            )
        return note, signed_at

    def _keep(
        self, base: int, leaves: list[tuple[int, int, bytes]], tiles: list[tuple[int, bytes]]
    ) -> bool:
        """Keep leaves and tile roots in one short transaction, if ``base`` is still the last.

        Leaves (and tiles) kept beyond the last checkpoint are signed by nobody yet: ones
        a checkpoint left there (stopped, or racing this one) are replaced. They hash the
        same events, so they are the same, unless the log changed in between; then these
        are the ones this checkpoint signs. False when another checkpoint was signed
        since ``base``: nothing is kept.
        """
        evidence, held = self._evidence, time.monotonic()
        with self._writing() as cursor:
            if self._last_size(cursor) != base:
                return False
            cursor.execute_many(
                f"INSERT INTO {evidence.leaves} (leaf_index, position, leaf_hash) "  # noqa: S608 (a table name of ours)
                "VALUES (?, ?, ?) ON CONFLICT (leaf_index) DO UPDATE "
                "SET position = excluded.position, leaf_hash = excluded.leaf_hash",
                leaves,
            )
            cursor.execute_many(
                f"INSERT INTO {evidence.tiles} (tile_index, tile_root) VALUES (?, ?) "  # noqa: S608 (a table name of ours)
                "ON CONFLICT (tile_index) DO UPDATE SET tile_root = excluded.tile_root",
                tiles,
            )
        if self._shares_lock:  # let waiting writers in (see LOCK_SHARE)
            time.sleep((time.monotonic() - held) * (1 - LOCK_SHARE) / LOCK_SHARE)
        return True

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Cursor]:
        """A write transaction that keeps other checkpoints out (not writers of events).

        Raises:
            LedgerBusyError: the database stayed locked by other writers past its timeout.
        """
        try:
            with self._database.transaction() as cursor:
                self._database.lock_table(cursor, self._evidence.checkpoints_table)
                yield cursor
        except BUSY_ERRORS as e:
            if not is_busy(e):
                raise
            msg = (
                f"the ledger was busy: its database stayed locked by other writers ({e}); "
                "nothing was signed: run the checkpoint again"
            )
            raise LedgerBusyError(msg) from None

    def _last_size(self, cursor: Cursor) -> int:
        rows = cursor.execute(f"SELECT MAX(tree_size) FROM {self._evidence.checkpoints_table}")  # noqa: S608 (a table name of ours)
        return NO_CHECKPOINT if rows[0][0] is None else int(rows[0][0])

    def _untiled(self, size: int) -> tuple[_Tiles, list[tuple[int, bytes]]]:
        """The leaves of the first ``size`` not yet in a kept tile, as tiles to complete.

        Returns the tiles, and those the kept leaves complete (missing ones, for a ledger
        checkpointed before tiles were kept). Tiles kept beyond the tree's complete tiles
        were not made from its leaves (its leaves were removed, or a checkpoint that
        stopped made them): they are not counted, and are replaced as leaves reach them.
        """
        rows = self._database.query(
            f"SELECT COALESCE(MAX(tile_index) + 1, 0) FROM {self._evidence.tiles} "  # noqa: S608 (a table name of ours)
            "WHERE tile_index < ?",
            (size // TILE,),
        )
        tiles = _Tiles(int(rows[0][0]))
        completed = []
        for start in range(tiles.next_index * TILE, size, PAGE):
            kept = self._evidence.kept_leaf_hashes(start, min(PAGE, size - start))
            completed += tiles.add(kept)
        return tiles, completed


class _Tiles:
    """Leaves gathered into tiles: each complete tile's root, with its index, once."""

    def __init__(self, next_index: int) -> None:
        self.next_index = next_index
        self._pending: list[bytes] = []

    def add(self, digests: Sequence[bytes]) -> list[tuple[int, bytes]]:
        """Take the next leaves in order; return the (index, root) of tiles they complete."""
        pending = self._pending
        pending.extend(digests)
        whole = len(pending) - len(pending) % TILE
        completed = [
            (self.next_index + n, merkle_root(pending[start : start + TILE]))
            for n, start in enumerate(range(0, whole, TILE))
        ]
        del pending[:whole]
        self.next_index += len(completed)
        return completed
