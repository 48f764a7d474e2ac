"""Bundles: one file an auditor takes away and verifies offline, without the ledger or its keys.

A bundle is JSON Lines (UTF-8). The first line is the header::

    {"format": "consent-ledger-bundle/1", "origin": ..., "public_key": <verifier key>,
     "checkpoint": <signed note>, "complete": true|false, "events": N,
     "consistency": [{"size": ..., "root": <hex>, "proof": [<hex>, ...]}, ...],
     "created_at": ...}

Every other line is one event::

    {"leaf_index": I, "leaf_hash": <hex>, "path": [<hex>, ...], "record": <leaf record>}

where ``record`` is the event's leaf record exactly as hashed (canonical JSON of the
stored event, see :func:`consent_ledger.evidence.leaves.leaf_record`), always last on the line,
so its bytes can be hashed as they are. A *complete* bundle holds every event the
checkpoint covers, in order, without paths: the verifier rebuilds the tree from the leaf
hashes and compares its root with the signed one. A *partial* bundle (a filtered export)
holds chosen events, each with its audit path to the signed root. ``consistency`` proves
that the checkpoint extends each earlier checkpoint of the ledger, so an auditor who kept
one can check the bundle against it (``--since``).

This module reads and verifies bundles (:mod:`~consent_ledger.evidence.bundling` writes
them). The verifier needs only this module, :mod:`~consent_ledger.evidence.merkle`,
:mod:`~consent_ledger.evidence.checkpoint` and orjson.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from consent_ledger.evidence.checkpoint import (
    Checkpoint,
    CheckpointError,
    VerifierKey,
    open_note,
    parse_verifier_key,
)
from consent_ledger.evidence.merkle import (
    TreeBuilder,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from consent_ledger.exceptions import ConsentLedgerError
from consent_ledger.model.values import utc_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence


FORMAT = "consent-ledger-bundle/1"
RECORD_KEY = b',"record":'  # always last on an event's line: the record's bytes follow
_POSITION = b'{"position":'


class BundleError(ConsentLedgerError):
    """A bundle cannot be read: it is not a bundle, or not this version of one."""


@dataclass
class BundleVerification:
    """What :func:`verify_bundle` found. ``problem`` is None when everything held."""

    origin: str = ""
    size: int = 0
    events: int = 0
    complete: bool = False
    key: str = ""
    pinned: bool = False
    since: list[int] = field(default_factory=list)
    created_at: str = ""
    """When the bundle says it was written (not signed: checked only to be plausible)."""
    problem: str | None = None
    line: int | None = None
    position: int | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return self.problem is None


def verify_bundle(
    lines: Iterable[bytes],
    keys: Sequence[VerifierKey] = (),
    *,
    since: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> BundleVerification:
    """Check a bundle: its signature, every leaf hash, the root, older checkpoints, header.

    ``keys``: the verifier keys to trust; when none are given, the key inside the bundle
    is used and the result says it was not pinned (check its id out of band).
    ``since``: signed checkpoints the auditor kept, which the bundle's must extend.

    The header's ``events`` must be the number of event lines. Its ``created_at`` is
    signed by nothing, so it can only be shown plausible: a UTC time, not after ``now``
    (default: the time of the check) and not before the newest event the bundle holds
    was recorded, each with :data:`CLOCK_SKEW` of leeway between the machines' clocks.
    """
    result = BundleVerification()
    source = iter(lines)
    try:
        header = _header(next(source, b""))
        trusted = list(keys) or [parse_verifier_key(header["public_key"])]
        head = open_note(header["checkpoint"], trusted)
        kept = [open_note(note, trusted) for note in since]
    except (BundleError, CheckpointError) as e:
        result.problem = str(e)
        return result
    result.origin, result.size, result.complete = head.origin, head.size, header["complete"]
    result.key, result.pinned = trusted[0].text, bool(keys)
    if head.origin != header["origin"]:
        result.problem = f"the checkpoint is for {head.origin}, the bundle for {header['origin']}"
        return result
    result.created_at = header["created_at"]
    _Events(result, head, kept, header, progress).check(source, now or datetime.now(UTC))
    return result


def _header(line: bytes) -> dict[str, Any]:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        msg = f"not a consent-ledger bundle (its first line must name {FORMAT})"
        raise BundleError(msg)
    for key, kind in (
        ("origin", str),
        ("public_key", str),
        ("checkpoint", str),
        ("complete", bool),
        ("events", int),
        ("created_at", str),
        ("consistency", list),
    ):
        value = header.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            msg = f"the bundle header has no valid {key!r}"
            raise BundleError(msg)
    if not all(isinstance(entry, dict) for entry in header["consistency"]):
        msg = "the bundle header has no valid 'consistency' (each proof is an object)"
        raise BundleError(msg)
    return header


class _Events:
    """The event lines of one bundle, checked one by one against the signed checkpoint."""

    def __init__(
        self,
        result: BundleVerification,
        head: Checkpoint,
        kept: list[Checkpoint],
        header: dict[str, Any],
        progress: Callable[[int], None] | None,
    ) -> None:
        self.result = result
        self.head = head
        self.kept = sorted(kept, key=lambda checkpoint: checkpoint.size)
        self.header = header
        self.progress = progress
        self.tree = TreeBuilder()
        self.position: int | None = None
        self.last_position: int | None = None
        self.newest = b""  # the latest time an event was recorded, as the record has it

    def check(self, source: Iterable[bytes], now: datetime) -> None:
        for number, line in enumerate(source, start=2):
            problem = self._event(line.rstrip(b"\r\n"))
            if problem is not None:
                self._fail(problem, number)
                return
            self.result.events += 1
            if self.progress is not None and self.result.events % 10_000 == 0:
                self.progress(10_000)
        self.position = None
        problem = self._complete_tree() if self.result.complete else self._consistency()
        if problem is not None:
            self._fail(problem, None)
            return
        problem = _header_counts(self.header, self.result.events) or _header_time(
            self.header["created_at"], self.newest, now
        )
        if problem is not None:
            self._fail(problem, 1)

    def _event(self, line: bytes) -> str | None:  # noqa: PLR0911 (one message per check)
        """Check one event line; return what is wrong with it, if anything."""
        parsed = _parse(line)
        if isinstance(parsed, str):
            return parsed
        index, listed, path, record = parsed
        position = self.position = _position(record)
        if position is None:
            return "the event's record names no position in the log"
        if leaf_hash(record) != listed:
            return f"the event at position {position} does not match its leaf hash"
        if self.last_position is not None and position <= self.last_position:
            return f"the event at position {position} is out of log order"
        self.last_position = position
        self.newest = max(self.newest, _recorded_at(record))
        if self.result.complete:
            return self._add(index, listed)
        if verify_inclusion(listed, index, self.head.size, path, self.head.root):
            return None
        return f"the event at position {position} is not in the signed tree (leaf {index})"

    def _add(self, index: int, digest: bytes) -> str | None:
        if index != self.tree.size:
            return f"leaf {self.tree.size} is missing (found leaf {index})"
        self.tree.append(digest)
        for checkpoint in self.kept:
            if checkpoint.size == self.tree.size and checkpoint.root != self.tree.root():
                return f"the log does not extend your checkpoint {checkpoint.size}"
        return None

    def _complete_tree(self) -> str | None:
        if self.tree.size != self.head.size:
            return (
                f"the bundle holds {self.tree.size} events; the checkpoint covers {self.head.size}"
            )
        if self.tree.root() != self.head.root:
            return f"the leaf hashes do not hash to the signed root of checkpoint {self.head.size}"
        for checkpoint in self.kept:
            if checkpoint.size > self.head.size:
                return f"your checkpoint {checkpoint.size} is newer than the bundle's"
            self.result.since.append(checkpoint.size)
        return None

    def _consistency(self) -> str | None:
        proofs = {entry.get("size"): entry for entry in self.header["consistency"]}
        for checkpoint in self.kept:
            entry = proofs.get(checkpoint.size)
            if checkpoint.size == self.head.size:
                consistent = checkpoint.root == self.head.root
            elif entry is None:
                size = checkpoint.size
                return f"the bundle carries no consistency proof from your checkpoint {size}"
            else:
                try:
                    proof = [bytes.fromhex(p) for p in entry.get("proof", ())]
                except (TypeError, ValueError):
                    return f"the consistency proof from checkpoint {checkpoint.size} is not hex"
                consistent = verify_consistency(
                    checkpoint.size, self.head.size, checkpoint.root, self.head.root, proof
                )
            if not consistent:
                return f"the log does not extend your checkpoint {checkpoint.size}"
            self.result.since.append(checkpoint.size)
        return None

    def _fail(self, problem: str, line: int | None) -> None:
        self.result.problem = f"line {line}: {problem}" if line is not None else problem
        self.result.line = line
        self.result.position = self.position


CLOCK_SKEW = timedelta(minutes=5)
"""How far apart the clocks of the machines that record, export and check may be."""
_TIMESTAMP = b'\\"timestamp\\":\\"'  # inside the record's state, a JSON string
_END = b'\\"'
_NEAR = 80  # bytes of a record to search for its time


def _recorded_at(record: bytes) -> bytes:
    """When the event was recorded, as its stored state says (ISO 8601 text), or b"".

    The ledger writes the time first in the state, which the record puts right after the
    position: only the record's first bytes are searched (a verifier reads millions).
    """
    start = record.find(_TIMESTAMP, 0, _NEAR)
    if start < 0:
        return b""
    start += len(_TIMESTAMP)
    return record[start : record.find(_END, start, start + _NEAR)]


def _header_counts(header: dict[str, Any], events: int) -> str | None:
    if header["events"] != events:
        return f"the bundle header says {header['events']} events; the bundle holds {events}"
    return None


def _header_time(created_at: str, newest: bytes, now: datetime) -> str | None:
    """What is wrong with the header's ``created_at``, if anything."""
    try:
        moment = datetime.fromisoformat(created_at)
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() != timedelta(0):
        return f"the bundle header's created_at {created_at!r} is not a UTC time"
    if moment > now + CLOCK_SKEW:
        return (
            f"the bundle header's created_at {created_at} is after this check "
            f"({utc_text(now)}): it was altered, or a clock is wrong"
        )
    try:
        recorded = datetime.fromisoformat(newest.decode()) if newest else None
    except ValueError:
        recorded = None
    if recorded is not None and moment < recorded - CLOCK_SKEW:
        return (
            f"the bundle header's created_at {created_at} is before the newest event it "
            f"holds was recorded ({utc_text(recorded)}): it was altered"
        )
    return None


_INDEX = b'{"leaf_index":'
_HASH = b',"leaf_hash":"'
_HEX_DIGITS = 64


def _parse(line: bytes) -> tuple[int, bytes, list[bytes], bytes] | str:
    """An event line's leaf index, listed leaf hash, path and record; or what is wrong."""
    cut = line.find(RECORD_KEY)
    if cut < 0 or not line.endswith(b"}"):
        return "not an event line (no record)"
    # The layout this module writes, read by slicing (a verifier reads a million of them).
    at = line.find(_HASH, 0, cut)
    digits = line[len(_INDEX) : at]
    if (
        line.startswith(_INDEX)
        and cut == at + len(_HASH) + _HEX_DIGITS + 1
        and digits.isdigit()
        and line[cut - 1 : cut] == b'"'
    ):
        try:
            listed = bytes.fromhex(line[at + len(_HASH) : cut - 1].decode())
        except ValueError:
            return "not an event line (leaf_hash)"
        return int(digits), listed, [], line[cut + len(RECORD_KEY) : -1]
    try:
        meta = orjson.loads(line[:cut] + b"}")
        index, listed = int(meta["leaf_index"]), bytes.fromhex(meta["leaf_hash"])
        path = [bytes.fromhex(p) for p in meta.get("path", ())]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return "not an event line (leaf_index, leaf_hash)"
    return index, listed, path, line[cut + len(RECORD_KEY) : -1]


def _position(record: bytes) -> int | None:
    """The position a leaf record starts with (it always does: JCS sorts it first)."""
    if not record.startswith(_POSITION):
        return None
    end = record.find(b",", len(_POSITION))
    digits = record[len(_POSITION) : end]
    return int(digits) if digits.lstrip(b"-").isdigit() else None
