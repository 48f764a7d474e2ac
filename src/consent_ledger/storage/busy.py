"""Telling a database that was busy (locked by another writer) from one that failed.

A write that waited longer than the lock timeout for another writer fails with an
``OperationalError``: SQLite's "database is locked", PostgreSQL's lock timeout, or the
connection pool's wait for its one writing connection. Nothing was written, and the same
write may well succeed a moment later, so callers retry it. Every other operational error
(a missing table, a full disk, a server that is down) is not retried: it would fail again.
"""

from __future__ import annotations

import sqlite3

from eventsourcing.persistence import ConnectionUnavailableError
from eventsourcing.persistence import OperationalError as StoreOperationalError

BUSY_ERRORS = (StoreOperationalError, sqlite3.OperationalError)
"""The exception types a busy database raises (test each with :func:`is_busy`)."""

_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6  # primary result codes; extended ones add high bits
_POSTGRES_BUSY = frozenset(
    {
        "55P03",  # lock_not_available: the lock timeout passed
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
    }
)


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` says the database was locked by other writers (so: try again).

    ``error`` is eventsourcing's ``OperationalError`` (which wraps the driver's error as
    its cause) or a plain ``sqlite3.OperationalError`` from a connection of the ledger's own.
    """
    if isinstance(error, ConnectionUnavailableError):  # the pool's writer stayed in use
        return True
    cause = error.__cause__ if isinstance(error, StoreOperationalError) else error
    if isinstance(cause, sqlite3.OperationalError):
        code = getattr(cause, "sqlite_errorcode", None)
        if code is None:  # raised by hand, without a result code: read the message
            return "locked" in str(cause) or "busy" in str(cause)
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return getattr(cause, "sqlstate", None) in _POSTGRES_BUSY
