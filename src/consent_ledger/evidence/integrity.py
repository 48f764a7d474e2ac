"""Tamper evidence: every stored event is a leaf of one Merkle tree, and checkpoints sign it.

Each event, exactly as stored, becomes a *leaf record*: the canonical JSON (RFC 8785) of
its position, stream, stream version, topic and stored state. Personal data inside the
state is sealed, so leaves hash ciphertext: destroying a subject's key (erasure) leaves
every leaf, root and proof valid. The leaves form one RFC 6962 tree in log order.

A *checkpoint* adds the leaves of the events recorded since the last one and signs the new
tree head (origin, size, root) with the ledger's Ed25519 key, as a C2SP signed note.
Checkpoints are append-only: each extends the tree the one before it signed, so each is
consistent with every earlier one. Publish them somewhere the operator cannot rewrite
(an auditor's archive, a ticket): a key holder who rewrites the log and signs again is
caught by any checkpoint kept outside (``verify --since``).

:meth:`TamperEvidence.verify` recomputes every leaf from the log, checks every checkpoint's
signature and root, and names the first position where the log departs from what was
signed. The leaves are kept beside the log only to name that position and to make
proofs; trust rests on the signed roots alone.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import itertools
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

import orjson

from consent_ledger.evidence.checkpoint import (
    Checkpoint,
    CheckpointError,
    VerifierKey,
    open_note,
    sign,
)
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
from consent_ledger.exceptions import ConsentLedgerError
from consent_ledger.model.values import utc_text
from consent_ledger.storage.log import BEFORE_ALL
from consent_ledger.storage.sqlite import select_stored_between
from consent_ledger.storage.stores import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from concurrent.futures import Future, ProcessPoolExecutor

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from consent_ledger.storage.log import EventLog, StoredRow
    from consent_ledger.storage.view_database import Cursor, ViewDatabase

LEAF_RECORD_VERSION = 1
PAGE = 10_000


def leaf_record(row: StoredRow) -> bytes:
    """The canonical (RFC 8785) JSON record of one stored event: what its leaf hashes.

    Keys in JCS order, no whitespace, integers as decimals, strings escaped as JCS and
    orjson both escape them (a property test holds this equal to the ``rfc8785`` package).
    ``state`` is the stored state as text, byte for byte.

    Raises:
        UnicodeDecodeError: the stored state is not UTF-8 text (never written so).
    """
    position, stream_id, version, topic, state = row
    return b'{"position":%d,"state":%s,"stream_id":"%s","stream_version":%d,"topic":%s,"v":%d}' % (
        position,
        orjson.dumps(state.decode()),
        stream_id.encode(),
        version,
        orjson.dumps(topic),
        LEAF_RECORD_VERSION,
    )


_LEAF = b'\x00{"position":%d,"state":%s,"stream_id":"%s","stream_version":%d,"topic":%s,"v":1}'


def leaf_hashes(rows: Iterable[StoredRow]) -> list[bytes]:
    """``leaf_hash(leaf_record(row))`` of each row, in one tight loop (verify runs it per event).

    A test holds it equal to the two functions it inlines.
    """
    sha256, dumps = hashlib.sha256, orjson.dumps
    return [
        sha256(
            _LEAF % (position, dumps(state.decode()), stream_id.encode(), version, dumps(topic))
        ).digest()
        for position, stream_id, version, topic, state in rows
    ]


_STORED_LEAF = (
    b'\x00{"position":%d,"state":%s,"stream_id":"%s-%s-%s-%s-%s","stream_version":%d,'
    b'"topic":%s,"v":1}'
)


def stored_leaf_hashes(rows: Iterable[tuple[int, bytes, int, bytes, bytes]]) -> list[bytes]:
    """:func:`leaf_hashes` of rows read byte for byte from SQLite (``select_stored_between``).

    The stored id (32 hex digits) is written in its dashed form here, not in SQL, which
    costs several times more there. A test holds it equal to :func:`leaf_hashes`.
    """
    sha256, dumps = hashlib.sha256, orjson.dumps
    return [
        sha256(
            _STORED_LEAF
            % (
                position,
                dumps(state.decode()),
                i[:8],
                i[8:12],
                i[12:16],
                i[16:20],
                i[20:],
                version,
                dumps(topic.decode()),
            )
        ).digest()
        for position, i, version, topic, state in rows
    ]


class LeafPage(NamedTuple):
    """A page of the log as leaves: positions, leaf hashes, and their subtree's root.

    ``root`` is set when the page holds a power of two of leaves: if they sit at an
    aligned place in the tree, the tree takes them as one perfect subtree.
    """

    positions: list[int]
    digests: list[bytes]
    root: bytes | None = None


PARALLEL_FROM = 200_000  # events: below this, starting worker processes costs more than it saves
PARALLEL_PAGE = 1 << 13  # positions per worker task: a power of two, so pages are subtrees
READER_MMAP_BYTES = 1 << 30


@contextlib.contextmanager
def leaf_pages(
    log: EventLog, after: int, *, workers: int | None = 1
) -> Iterator[Iterator[LeafPage]]:
    """The leaves of the events after ``after``, page by page, in log order.

    Hashing is the cost of checkpointing and verifying a large log, and reading and
    hashing a page needs nothing from another page. On SQLite, pages are read as stored
    (bytes, ids in hex: :func:`stored_leaf_hashes`) through a read-only connection of
    their own; with ``workers`` > 1 (``None``: one per CPU once there are
    :data:`PARALLEL_FROM` events to read), worker processes each read and hash whole
    pages of positions, while this process builds the tree. Pages come back in order;
    events recorded meanwhile are read here afterwards. Workers are started with
    ``spawn``: a program that asks for them must guard its entry point
    (``if __name__ == "__main__":``), as multiprocessing requires; the command line does.
    """
    path = log.store.path if isinstance(log.store, SQLiteStore) else None
    if path is None:
        yield _read_pages(log, after)
        return
    head = log.head()
    if workers is None:
        workers = (os.cpu_count() or 1) if head - max(after, 0) >= PARALLEL_FROM else 1
    bounds = sorted({after, *range(max(after, 0), head, PARALLEL_PAGE), max(after, head)})
    ranges = [(str(path), low, high) for low, high in itertools.pairwise(bounds)]
    meanwhile = _read_pages(log, max(after, head))  # events recorded while these are read
    if workers < 2:  # noqa: PLR2004 (one worker is no parallelism)
        with contextlib.closing(_reader(str(path))) as reader:
            pages = (_hash_rows(reader, low, high) for _, low, high in ranges)
            yield itertools.chain((page for page in pages if page.positions), meanwhile)
        return
    import multiprocessing  # noqa: PLC0415 (only a large log's verify starts workers)
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield itertools.chain(_parallel_pages(pool, ranges, ahead=2 * workers), meanwhile)


def _read_pages(log: EventLog, after: int) -> Iterator[LeafPage]:
    while page := log.read_stored(after, PAGE):
        yield LeafPage([row[0] for row in page], leaf_hashes(page))
        after = page[-1][0]


def _parallel_pages(
    pool: ProcessPoolExecutor, ranges: list[tuple[str, int, int]], *, ahead: int
) -> Iterator[LeafPage]:
    """Each range's leaves from the pool, in order, with a few ranges in flight (memory flat)."""
    waiting = iter(ranges)
    pending: collections.deque[Future[LeafPage]] = collections.deque(
        pool.submit(_hash_range, *task) for task in itertools.islice(waiting, ahead)
    )
    while pending:
        page = pending.popleft().result()
        pending.extend(pool.submit(_hash_range, *task) for task in itertools.islice(waiting, 1))
        if page.positions:
            yield page


_READERS: dict[str, sqlite3.Connection] = {}


def _hash_range(path: str, low: int, high: int) -> LeafPage:
    """In a worker process: the leaves of the events at low < position <= high."""
    reader = _READERS.get(path)
    if reader is None:
        reader = _READERS[path] = _reader(path)
    return _hash_rows(reader, low, high)


def _reader(path: str) -> sqlite3.Connection:
    uri = f"file:{urllib.parse.quote(path)}?mode=ro"
    reader = sqlite3.connect(uri, uri=True, check_same_thread=False)
    reader.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")  # pages mapped, not copied in
    return reader


def _hash_rows(reader: sqlite3.Connection, low: int, high: int) -> LeafPage:
    rows = select_stored_between(reader, low, high)
    digests = stored_leaf_hashes(rows)
    perfect = len(digests) > 0 and len(digests) & (len(digests) - 1) == 0
    return LeafPage([row[0] for row in rows], digests, merkle_root(digests) if perfect else None)


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


@dataclass(frozen=True)
class Verification:
    """What :meth:`TamperEvidence.verify` found.

    ``problem`` is None when every checked event is exactly as checkpointed; otherwise it
    says what failed, and ``position`` names the first bad position when it can be named.
    """

    events: int
    checkpoints: int
    covered: int
    problem: str | None = None
    position: int | None = None

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return self.problem is None

    @property
    def unchecked(self) -> int:
        """Events recorded after the latest checkpoint, which no signature covers yet."""
        return self.events - self.covered


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

        ``workers``: processes that hash leaves on SQLite (see :func:`leaf_pages`).

        Raises:
            IntegrityError: the kept tree state does not match the last signed root.
        """
        key = self.verifier_key(private_key)
        with self.database.transaction() as cursor:
            self.database.lock_table(cursor, self.checkpoints_table)
            rows = cursor.execute(
                f"SELECT tree_size, frontier, last_position, note, signed_at "
                f"FROM {self.checkpoints_table} ORDER BY tree_size DESC LIMIT 1"
            )
            if rows:
                size, frontier, after, note, signed_at = rows[0]
                tree = self._resume(size, bytes(frontier), _signed(note, signed_at, key))
            else:
                tree, after, note = TreeBuilder(), BEFORE_ALL, None
            after = self._add_leaves(cursor, tree, after, workers)
            if note is not None and tree.size == size:
                return _signed(note, signed_at, key)
            head = Checkpoint(self.origin, tree.size, tree.root())
            note = sign(head, self.origin, private_key)
            signed_at = utc_text(datetime.now(UTC))
            cursor.execute(
                f"INSERT INTO {self.checkpoints_table} "
                "(tree_size, root, frontier, last_position, note, signed_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (tree.size, head.root, b"".join(tree.frontier), after, note, signed_at),
            )
        return _signed(note, signed_at, key)

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

    def _add_leaves(
        self, cursor: Cursor, tree: TreeBuilder, after: int, workers: int | None
    ) -> int:
        """Append the leaves of events after position ``after``; return the last position.

        Each tile the new leaves complete has its root kept (and any tile a ledger
        checkpointed before tiles were kept, from its kept leaves).
        """
        tiles = self._untiled(cursor, tree.size)
        with leaf_pages(self.log, after, workers=workers) as pages:
            for positions, digests, root in pages:
                first = tree.size
                if root is not None and first % len(digests) == 0:
                    tree.append_subtree(root, len(digests))  # hashed once, where it was read
                else:
                    tree.extend(digests)
                cursor.execute_many(
                    f"INSERT INTO {self.leaves} (leaf_index, position, leaf_hash) VALUES (?, ?, ?)",
                    [
                        (first + i, p, d)
                        for i, (p, d) in enumerate(zip(positions, digests, strict=True))
                    ],
                )
                self._keep_tiles(cursor, tiles.add(digests))
                after = positions[-1]
        return after

    def _untiled(self, cursor: Cursor, size: int) -> _Tiles:
        """The leaves of the first ``size`` not yet in a kept tile, as tiles to complete.

        Tiles are kept in order with the leaves; any kept beyond the tree's complete tiles
        were not made from its leaves (its leaves were removed), and are dropped.
        """
        cursor.execute(f"DELETE FROM {self.tiles} WHERE tile_index >= ?", (size // TILE,))
        rows = cursor.execute(f"SELECT COALESCE(MAX(tile_index) + 1, 0) FROM {self.tiles}")
        tiles = _Tiles(int(rows[0][0]))
        for start in range(tiles.next_index * TILE, size, PAGE):
            self._keep_tiles(cursor, tiles.add(self._leaf_hashes(start, min(PAGE, size - start))))
        return tiles

    def _keep_tiles(self, cursor: Cursor, completed: list[tuple[int, bytes]]) -> None:
        if completed:
            cursor.execute_many(
                f"INSERT INTO {self.tiles} (tile_index, tile_root) VALUES (?, ?)", completed
            )

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

    def _leaf_hashes(self, start: int, count: int) -> list[bytes]:
        """Kept leaves ``start`` to ``start + count - 1``, all of them, or IntegrityError."""
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
                else merkle_root(self._leaf_hashes(index * TILE, TILE))
                for index in range(size // TILE)
            ]
            tree = TiledTree(size, roots, self._leaf_hashes, tile=TILE)
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
        own = self.checkpoints()
        heads: list[Checkpoint] = []
        for label, note in [(f"checkpoint {c.size}", c.note) for c in own] + [
            ("the kept checkpoint", note) for note in since
        ]:
            try:
                head = open_note(note, keys)
            except CheckpointError as e:
                return Verification(0, len(own), 0, f"{label}: {e}")
            if head.origin != self.origin:
                problem = f"{label} is for {head.origin}, not {self.origin}"
                return Verification(0, len(own), 0, problem)
            heads.append(head)
        covered = own[-1].size if own else 0
        outside = frozenset(heads[len(own) :]) - frozenset(heads[: len(own)])  # the auditor's
        heads.sort(key=lambda head: head.size)
        replay = functools.partial(
            self._replay, heads, covered, len(own), workers=workers, outside=outside
        )
        result = replay(progress, compare=thorough)
        if not result.ok and not thorough:  # where did it change? ask the kept leaves
            result = replay(None, compare=True)
        return result

    def _replay(  # noqa: PLR0913 (one pass needs all of these)
        self,
        heads: list[Checkpoint],
        covered: int,
        checkpoints: int,
        progress: Callable[[int], None] | None,
        *,
        workers: int | None,
        outside: frozenset[Checkpoint],
        compare: bool,
    ) -> Verification:
        replay = _Replay(
            self, heads, covered, progress, checkpoints, outside=outside, compare=compare
        )
        with leaf_pages(self.log, BEFORE_ALL, workers=workers) as pages:
            return replay.run(pages)


class _Replay:
    """One pass over the log: leaves recomputed, compared with the kept ones, roots checked."""

    def __init__(  # noqa: PLR0913 (one pass needs all of these)
        self,
        evidence: TamperEvidence,
        heads: list[Checkpoint],
        covered: int,
        progress: Callable[[int], None] | None,
        checkpoints: int,
        *,
        outside: frozenset[Checkpoint],
        compare: bool,
    ) -> None:
        self.evidence = evidence
        self.compare = compare
        self.due = collections.deque(heads)  # by size: the next to check first
        self.covered = covered
        self.progress = progress
        self.checkpoints = checkpoints
        self.tree = TreeBuilder()
        self.first_difference: tuple[int, str] | None = None
        self.outside = outside  # checkpoints an auditor kept, not this ledger's own

    def run(self, pages: Iterator[LeafPage]) -> Verification:
        failed = self._check_due()  # a checkpoint of the empty log, if any
        while failed is None and (page := next(pages, None)) is not None:
            failed = self._take(page)
            if self.progress is not None:
                self.progress(len(page.positions))
        if failed is None and self.due:
            failed = self._ended_early()
        if failed is not None:
            return self._failed(failed)
        if self.first_difference is not None:  # the log is as signed: the index is not
            position, what = self.first_difference
            problem = (
                f"position {position} {_AS_THE_INDEX_HAS_IT[what]}, though the log matches "
                "every checkpoint: the leaf index was altered"
            )
            return self._result(problem, position)
        return self._result(None, None)

    def _take(self, page: LeafPage) -> Checkpoint | None:
        """Add a page of leaves to the tree; return a checkpoint whose root it misses."""
        positions, digests, root = page
        if self.compare and self.tree.size < self.covered and self.first_difference is None:
            self._compare_page(positions, digests)
        count, size = len(digests), self.tree.size
        if root is not None and size % count == 0 and not self._due_within(size, size + count):
            self.tree.append_subtree(root, count)  # a perfect subtree: one step, not count
            return self._check_due()
        start = 0
        while start < len(digests):  # up to each signed size in the page, then the rest
            end = len(digests)
            if self.due and self.due[0].size - self.tree.size <= end - start:
                end = start + self.due[0].size - self.tree.size
            self.tree.extend(digests[start:end])
            start = end
            failed = self._check_due()
            if failed is not None:
                return failed
        return None

    def _due_within(self, low: int, high: int) -> bool:
        """Whether a checkpoint's size falls strictly inside (low, high)."""
        return bool(self.due) and low < self.due[0].size < high

    def _compare_page(self, positions: list[int], digests: list[bytes]) -> None:
        """Compare a page with the kept leaves in bulk; one by one only where they part."""
        count = min(len(positions), self.covered - self.tree.size)
        kept = self.evidence.kept_leaves(self.tree.size, count)
        if [p for p, _ in kept] == positions[:count] and [d for _, d in kept] == digests[:count]:
            return
        for index, (position, digest) in enumerate(zip(positions[:count], digests, strict=False)):
            self._compare(position, digest, kept[index] if index < len(kept) else None)
            if self.first_difference is not None:
                return

    def _check_due(self) -> Checkpoint | None:
        """Check the checkpoints of the tree's current size; return one that fails."""
        while self.due and self.due[0].size == self.tree.size:
            head = self.due.popleft()
            if self.tree.root() != head.root:
                return head
        return None

    def _ended_early(self) -> Checkpoint:
        """The log ends before a signed size: events were deleted."""
        if self.first_difference is None:
            missing = self.evidence.kept_leaves(self.tree.size, 1)
            if missing:
                self.first_difference = (missing[0][0], "was deleted from the log")
        return self.due[0]

    def _compare(self, position: int, digest: bytes, kept: tuple[int, bytes] | None) -> None:
        """Note the first place where the log and the kept leaves part."""
        if kept is None:
            self.first_difference = (position, "is missing")
        elif kept[0] < position:
            self.first_difference = (kept[0], "was deleted from the log")
        elif kept[0] > position:
            self.first_difference = (position, "was not in the log when it was checkpointed")
        elif kept[1] != digest:
            self.first_difference = (position, "differs from the event that was checkpointed")

    def _failed(self, head: Checkpoint) -> Verification:
        """The log does not hash to ``head``'s signed root: say where, if the leaves can."""
        name = "your kept checkpoint" if head in self.outside else "checkpoint"
        what = f"the log does not match {name} {head.size} (signed root differs)"
        if self.first_difference is not None and self._kept_leaves_match(head):
            position, change = self.first_difference
            return self._result(f"position {position} {change}; {what}", position)
        return self._result(f"{what}; the leaf index cannot name the position", None)

    def _kept_leaves_match(self, head: Checkpoint) -> bool:
        """Whether the kept leaves hash to ``head``'s signed root (so they can be trusted)."""
        tree = TreeBuilder()
        tree.extend(digest for _, digest in self.evidence.stored_leaves(head.size))
        return tree.size == head.size and tree.root() == head.root

    def _result(self, problem: str | None, position: int | None) -> Verification:
        events = self.tree.size  # read so far: all of them, unless a check failed
        return Verification(events, self.checkpoints, self.covered, problem, position)


_AS_THE_INDEX_HAS_IT = {  # a first difference, said of the leaf index when the log is intact
    "is missing": "has no entry in the leaf index",
    "was not in the log when it was checkpointed": "has no entry in the leaf index",
    "was deleted from the log": "is in the leaf index but not in the log",
    "differs from the event that was checkpointed": "has another hash in the leaf index",
}


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


def _split_hashes(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


def _stored(note: str, signed_at: str) -> SignedCheckpoint:
    """A kept checkpoint, read without checking its signature (that is verify's job)."""
    body = note.split("\n\n", 1)[0] + "\n"
    return SignedCheckpoint(Checkpoint.parse(body), note, datetime.fromisoformat(signed_at))


def _signed(note: str, signed_at: str, key: VerifierKey) -> SignedCheckpoint:
    """A checkpoint just made or read under the ledger's own key, its signature checked."""
    return SignedCheckpoint(open_note(note, [key]), note, datetime.fromisoformat(signed_at))
