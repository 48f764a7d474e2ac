"""Leaves: each stored event as the record its Merkle leaf hashes, and those hashes, fast.

A *leaf record* is the canonical JSON (RFC 8785) of an event's position, stream, stream
version, topic and stored state, exactly as stored. Personal data inside the state is
sealed, so leaves hash ciphertext: destroying a subject's key (erasure) leaves every leaf,
root and proof valid.

Hashing every leaf is the cost of checkpointing and verifying a large log, so
:func:`leaf_pages` reads the log page by page and, on SQLite, can hash pages in worker
processes while the caller builds the tree.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import os
import sqlite3
import urllib.parse
from typing import TYPE_CHECKING, NamedTuple

import orjson

from consent_ledger.evidence.merkle import root as merkle_root
from consent_ledger.storage.sqlite import select_stored_between
from consent_ledger.storage.stores import SQLiteStore

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future, ProcessPoolExecutor

    from consent_ledger.storage.log import EventLog, StoredRow

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
