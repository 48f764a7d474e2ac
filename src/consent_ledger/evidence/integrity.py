"""Tamper evidence: every stored event is a leaf of one Merkle tree, and checkpoints sign it.

Each event, exactly as stored, becomes a *leaf record* (see
:mod:`consent_ledger.evidence.leaves`); the leaves form one RFC 6962 tree in log order.
:class:`TamperEvidence` keeps that tree beside the log, in the ledger's database.

A *checkpoint* adds the leaves of the events recorded since the last one and signs the new
tree head (origin, size, root) with the ledger's Ed25519 key, as a C2SP signed note.
Checkpoints are append-only: each extends the tree the one before it signed, so each is
consistent with every earlier one. Publish them somewhere the operator cannot rewrite
(an auditor's archive, a ticket): a key holder who rewrites the log and signs again is
caught by any checkpoint kept outside (``verify --since``).

:meth:`TamperEvidence.verify` (see :mod:`consent_ledger.evidence.verification`) recomputes
every leaf from the log, checks every checkpoint's signature and root, and names the first
position where the log departs from what was signed. The leaves are kept beside the log
only to name that position and to make proofs; trust rests on the signed roots alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from consent_ledger.evidence.checkpoint import Checkpoint, VerifierKey, open_note, sign
from consent_ledger.evidence.growth import NO_CHECKPOINT, Base, Growth
from consent_ledger.evidence.leaves import PAGE, leaf_record
from consent_ledger.evidence.merkle import (
    HASH_SIZE,
    TILE,
    ProvingTree,
    TiledTree,
    TreeBuilder,
    leaf_hash,
    verify_inclusion,
)
from consent_ledger.evidence.merkle import root as merkle_root
from consent_ledger.evidence.verification import Verification, verify_log
from consent_ledger.exceptions import ConsentLedgerError
from consent_ledger.storage.log import BEFORE_ALL

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from consent_ledger.storage.log import EventLog, StoredRow
    from consent_ledger.storage.view_database import ViewDatabase


def origin(ledger_id: str) -> str:
    """The checkpoint origin (and signing key name) of a ledger."""
    return f"consent-ledger/{ledger_id}"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint as the ledger keeps it: the signed note and what it says."""

    checkpoint: Checkpoint
    note: str
    signed_at: datetime

    @property
    def size(self) -> int:
        """How many events the checkpoint covers."""
        return self.checkpoint.size


@dataclass(frozen=True)
class ProvenEvent:
    """One stored event with the audit path that puts it in a checkpoint's tree."""

    leaf_index: int
    record: bytes
    """The leaf record, exactly as hashed (canonical JSON of the stored event)."""
    path: list[bytes]


class IntegrityError(ConsentLedgerError):
    """The log, or the leaves kept beside it, are not as the checkpoints signed them."""


class TamperEvidence:
    """The leaves and signed checkpoints of one ledger's log, kept in its own database."""

    def __init__(self, log: EventLog, database: ViewDatabase) -> None:
        """Keep the tree of ``log`` in ``database`` (the ledger's), creating tables if needed."""
        self.log = log
        self.database = database
        self.leaves = database.table("ledger_leaves")
        self.checkpoints_table = database.table("ledger_checkpoints")
        self.tiles = database.table("ledger_tiles")
        with database.transaction() as cursor:
            database.lock_schema(cursor)
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self.leaves} (leaf_index BIGINT PRIMARY KEY, "
                f"position BIGINT NOT NULL, leaf_hash {database.binary} NOT NULL)"
                + database.clustered
            )
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS ledger_leaves_position ON {self.leaves} (position)"
            )
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self.checkpoints_table} ("
                f"tree_size BIGINT PRIMARY KEY, root {database.binary} NOT NULL, "
                f"frontier {database.binary} NOT NULL, last_position BIGINT NOT NULL, "
                "note TEXT NOT NULL, signed_at TEXT NOT NULL)"
            )
            cursor.execute(  # the root of each complete tile of TILE leaves, for proofs
                f"CREATE TABLE IF NOT EXISTS {self.tiles} (tile_index BIGINT PRIMARY KEY, "
                f"tile_root {database.binary} NOT NULL)" + database.clustered
            )

    @property
    def origin(self) -> str:
        """This ledger's checkpoint origin."""
        return origin(self.log.ledger_id)

    def verifier_key(self, private_key: Ed25519PrivateKey) -> VerifierKey:
        """The public half of the signing key, named as the checkpoints name it."""
        return VerifierKey.from_public_key(self.origin, private_key.public_key())

    # Signing.

    def checkpoint(
        self, private_key: Ed25519PrivateKey, *, workers: int | None = 1
    ) -> SignedCheckpoint:
        """Add the leaves of every event since the last checkpoint, and sign the new head.

        The new tree grows from the last signed one, so it is consistent with every
        checkpoint signed before (C2SP: a log must never sign an inconsistent one); the
        kept state it grows from is checked against the last signed root first. When
        nothing was recorded since, the latest checkpoint is returned as it is.

        No writer waits for the hashing: the new events are read and hashed with no lock
        held, and the write lock is taken only to keep each page of leaves (a short
        transaction) and, at the end, to store and sign the new head. Two checkpoints at
        once still make one chain: each page is kept, and the head signed, only while
        the last signed checkpoint is still the one this one grows from. A checkpoint
        that finds a larger one signed meanwhile returns it; one that finds a smaller
        one grows again from it (hashing only what that one did not cover).

        ``workers``: processes that hash leaves on SQLite (see :func:`leaf_pages`).

        Raises:
            IntegrityError: the kept tree state does not match the last signed root.
            LedgerBusyError: the ledger's database stayed locked by other writers.
        """
        key = self.verifier_key(private_key)
        growth = Growth(self)
        while True:  # again only when another checkpoint was signed meanwhile
            base = self._base(key)
            grown = growth.grow(base, workers)
            if grown is None:
                continue
            tree, after = grown
            if base.signed is not None and tree.size == base.size:
                return base.signed  # nothing new
            stored = growth.store(
                base, tree, after, lambda head: sign(head, self.origin, private_key)
            )
            if stored is not None:
                return _signed(*stored, key)

    def _base(self, key: VerifierKey) -> Base:
        """The last signed tree, which a new checkpoint grows from (read, not locked)."""
        rows = self.database.query(
            f"SELECT tree_size, frontier, last_position, note, signed_at "
            f"FROM {self.checkpoints_table} ORDER BY tree_size DESC LIMIT 1"
        )
        if not rows:
            return Base(NO_CHECKPOINT, TreeBuilder(), BEFORE_ALL, None)
        size, frontier, after, note, signed_at = rows[0]
        signed = _signed(note, signed_at, key)
        return Base(size, self._resume(size, bytes(frontier), signed), after, signed)

    def _resume(self, size: int, frontier: bytes, last: SignedCheckpoint) -> TreeBuilder:
        """The last signed tree, from its kept frontier, once it is shown to be that tree."""
        try:
            tree = TreeBuilder.resume(size, _split_hashes(frontier))
        except ValueError:
            tree = None
        if tree is None or last.size != size or tree.root() != last.checkpoint.root:
            msg = (
                f"the kept state of checkpoint {size} (the tree frontier stored with it) does "
                "not hash to its signed root: nothing signed; the checkpoints table was altered "
                "(verify checks the log itself)"
            )
            raise IntegrityError(msg)
        return tree

    # Reading.

    def checkpoints(self) -> list[SignedCheckpoint]:
        """Every checkpoint, oldest first, as stored (not verified: see :meth:`verify`)."""
        rows = self.database.query(
            f"SELECT note, signed_at FROM {self.checkpoints_table} ORDER BY tree_size"
        )
        return [_stored(note, signed_at) for note, signed_at in rows]

    def latest(self) -> SignedCheckpoint | None:
        """The newest checkpoint, if any."""
        rows = self.database.query(
            f"SELECT note, signed_at FROM {self.checkpoints_table} ORDER BY tree_size DESC LIMIT 1"
        )
        return _stored(*rows[0]) if rows else None

    def stored_leaves(self, size: int | None = None) -> Iterator[tuple[int, bytes]]:
        """The kept leaves as (position, leaf hash), in order, up to ``size`` of them."""
        start = 0
        while size is None or start < size:
            limit = PAGE if size is None else min(PAGE, size - start)
            rows = self.database.query(
                f"SELECT leaf_index, position, leaf_hash FROM {self.leaves} "
                "WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?",
                (start, limit),
            )
            if not rows:
                return
            for _, position, digest in rows:
                yield position, bytes(digest)
            start = rows[-1][0] + 1

    def kept_leaf_hashes(self, start: int, count: int) -> list[bytes]:
        """The hashes of kept leaves ``start`` to ``start + count - 1``, in order.

        Raises:
            IntegrityError: some of them are not kept.
        """
        rows = self.database.query(
            f"SELECT leaf_hash FROM {self.leaves} "
            "WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index",
            (start, start + count),
        )
        if len(rows) != count:
            msg = (
                f"kept leaves {start} to {start + count - 1} are incomplete: "
                "run consent-ledger verify --thorough"
            )
            raise IntegrityError(msg)
        return [bytes(digest) for (digest,) in rows]

    def kept_leaves(self, start: int, count: int) -> list[tuple[int, bytes]]:
        """Up to ``count`` kept leaves from leaf ``start`` on, as (position, leaf hash)."""
        rows: list[tuple[int, bytes]] = self.database.query(  # (int, bytes) from both drivers
            f"SELECT position, leaf_hash FROM {self.leaves} "
            "WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?",
            (start, count),
        )
        return rows

    # Proving.

    def tree(self, checkpoint: SignedCheckpoint) -> TiledTree:
        """The tree ``checkpoint`` signed, from the kept tiles and leaves, for proofs.

        Only the roots of its complete tiles are read (a few thousand for millions of
        events), and a tile's leaves when a proof reaches into it. A tile not kept (a
        ledger checkpointed before tiles were) is hashed from its leaves. The tree must
        hash to the signed root; if it does not, the tiles are not trusted and the tree
        is built from the kept leaves alone.

        Raises:
            IntegrityError: the kept leaves do not hash to the signed root.
        """
        size = checkpoint.size
        kept: dict[int, bytes] = dict(
            self.database.query(
                f"SELECT tile_index, tile_root FROM {self.tiles} WHERE tile_index < ?",
                (size // TILE,),
            )
        )
        for tiles in (kept, {}):
            roots = [
                bytes(tiles[index])
                if index in tiles
                else merkle_root(self.kept_leaf_hashes(index * TILE, TILE))
                for index in range(size // TILE)
            ]
            tree = TiledTree(size, roots, self.kept_leaf_hashes, tile=TILE)
            if tree.root() == checkpoint.checkpoint.root:
                return tree
        msg = (
            f"the kept leaves do not match checkpoint {checkpoint.size}: "
            "run consent-ledger verify --thorough"
        )
        raise IntegrityError(msg)

    def prove(
        self, rows: Sequence[StoredRow], checkpoint: SignedCheckpoint, tree: ProvingTree
    ) -> list[ProvenEvent]:
        """Audit paths from each stored event to ``checkpoint``'s root (``tree`` is its tree).

        Raises:
            IntegrityError: an event is not covered by the checkpoint, differs from the
                event that was checkpointed, or the kept leaves do not prove it (every
                proof is verified before it is given).
        """
        index_of = self._leaf_indexes([row[0] for row in rows])
        proven = []
        for row in rows:
            index = index_of.get(row[0])
            if index is None or index >= checkpoint.size:
                msg = f"position {row[0]} is not covered by checkpoint {checkpoint.size}"
                raise IntegrityError(msg)
            record = leaf_record(row)
            if leaf_hash(record) != tree.leaf(index):
                msg = f"position {row[0]} differs from the event that was checkpointed"
                raise IntegrityError(msg)
            path = tree.inclusion_proof(index)
            if not verify_inclusion(
                leaf_hash(record), index, checkpoint.size, path, checkpoint.checkpoint.root
            ):  # never hand out a proof that does not verify
                msg = (
                    f"the kept leaves do not prove position {row[0]} under checkpoint "
                    f"{checkpoint.size}: run consent-ledger verify --thorough"
                )
                raise IntegrityError(msg)
            proven.append(ProvenEvent(index, record, path))
        return proven

    def _leaf_indexes(self, positions: list[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for start in range(0, len(positions), 500):
            chunk = positions[start : start + 500]
            rows = self.database.query(
                f"SELECT position, leaf_index FROM {self.leaves} "
                f"WHERE position IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update((int(position), int(index)) for position, index in rows)
        return found

    # Verifying.

    def verify(
        self,
        keys: Sequence[VerifierKey],
        *,
        since: Sequence[str] = (),
        progress: Callable[[int], None] | None = None,
        workers: int | None = 1,
        thorough: bool = False,
    ) -> Verification:
        """Check every stored event against every signed checkpoint.

        Every checkpoint must carry a good signature by one of ``keys`` and name this
        ledger's origin; the leaves recomputed from the log must hash to each one's root.
        ``since``: signed notes of checkpoints kept outside the ledger (by an auditor);
        the log must extend each of them too, which a log rewritten and signed again by
        the key's holder cannot. ``progress`` is called with the events read per page.
        ``workers``: processes that hash leaves on SQLite (see :func:`leaf_pages`;
        ``None``: one per CPU for a large log).

        The signed roots alone prove the log; the kept leaves only say where it changed.
        So the leaves are read only when a root does not match (a second pass then names
        the first changed position), or always with ``thorough``, which also reports a
        leaf index altered while the log is intact.
        """
        return verify_log(
            self, keys, since=since, progress=progress, workers=workers, thorough=thorough
        )


def _split_hashes(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


def _stored(note: str, signed_at: str) -> SignedCheckpoint:
    """A kept checkpoint, read without checking its signature (that is verify's job)."""
    body = note.split("\n\n", 1)[0] + "\n"
    return SignedCheckpoint(Checkpoint.parse(body), note, datetime.fromisoformat(signed_at))


def _signed(note: str, signed_at: str, key: VerifierKey) -> SignedCheckpoint:
    """A checkpoint just made or read under the ledger's own key, its signature checked."""
    return SignedCheckpoint(open_note(note, [key]), note, datetime.fromisoformat(signed_at))
