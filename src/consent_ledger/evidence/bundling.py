"""Writing bundles: a checkpoint signed now, and the events it covers, as one file.

The format is :mod:`~consent_ledger.evidence.bundle`'s, which reads and verifies it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from consent_ledger.evidence.bundle import FORMAT, RECORD_KEY
from consent_ledger.evidence.merkle import TreeBuilder, leaf_hash
from consent_ledger.model.values import utc_text
from consent_ledger.storage.log import READ_PAGE, stored_events

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from consent_ledger.evidence.checkpoint import VerifierKey
    from consent_ledger.evidence.integrity import ProvenEvent, SignedCheckpoint, TamperEvidence
    from consent_ledger.storage.log import EventLog, StoredRow


class SigningLedger(Protocol):
    """What writing a bundle needs of a ledger (:class:`consent_ledger.ConsentLedger` is one)."""

    @property
    def event_log(self) -> EventLog:
        """The ledger's log."""

    @property
    def tamper_evidence(self) -> TamperEvidence:
        """Its leaves and checkpoints."""

    def checkpoint(self, *, workers: int | None = 1) -> SignedCheckpoint:
        """Sign what is recorded so far."""

    def verifier_key(self) -> VerifierKey:
        """The key that verifies its checkpoints."""


@dataclass
class BundleWriter:
    """Writes a bundle of the events ``checkpoint`` covers, through ``write``."""

    evidence: TamperEvidence
    checkpoint: SignedCheckpoint
    public_key: VerifierKey
    write: Callable[[bytes], object]
    events: int = 0

    def header(self, *, complete: bool, events: int, consistency: list[dict[str, Any]]) -> None:
        """Write the first line."""
        header = {
            "format": FORMAT,
            "origin": self.checkpoint.checkpoint.origin,
            "public_key": self.public_key.text,
            "checkpoint": self.checkpoint.note,
            "complete": complete,
            "events": events,
            "consistency": consistency,
            "created_at": utc_text(datetime.now(UTC)),
        }
        self.write(orjson.dumps(header, option=orjson.OPT_APPEND_NEWLINE))

    def complete(self, rows: Iterable[StoredRow], progress: Callable[[int], None] | None) -> int:
        """Every covered event with its leaf hash, checked against the signed root.

        Raises:
            IntegrityError: the events do not hash to the checkpoint's root (the log
                changed since it was signed): the bundle would not verify.
        """
        from consent_ledger.evidence.integrity import IntegrityError  # noqa: PLC0415 (writing only)
        from consent_ledger.evidence.leaves import leaf_record  # noqa: PLC0415 (writing only)

        tree, lines = TreeBuilder(), []
        for index, row in enumerate(rows):
            record = leaf_record(row)
            digest = leaf_hash(record)
            tree.append(digest)
            lines.append(_line(index, digest, None, record))
            if len(lines) == READ_PAGE:
                self._flush(lines, progress)
        self._flush(lines, progress)
        head = self.checkpoint.checkpoint
        if (tree.size, tree.root()) != (head.size, head.root):
            msg = (
                f"the log does not hash to checkpoint {head.size}: no bundle written; "
                "run consent-ledger verify"
            )
            raise IntegrityError(msg)
        return self.events

    def partial(
        self, proven: Iterable[ProvenEvent], progress: Callable[[int], None] | None = None
    ) -> int:
        """Chosen events, each with its audit path."""
        lines = [
            _line(event.leaf_index, leaf_hash(event.record), event.path, event.record)
            for event in proven
        ]
        self._flush(lines, progress)
        return self.events

    def _flush(self, lines: list[bytes], progress: Callable[[int], None] | None) -> None:
        if lines:
            self.write(b"".join(lines))
            self.events += len(lines)
            if progress is not None:
                progress(len(lines))
            lines.clear()


def write_bundle(
    ledger: SigningLedger,
    write: Callable[[bytes], object],
    positions: Sequence[int] | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    workers: int | None = 1,
) -> tuple[SignedCheckpoint, int]:
    """Sign a checkpoint of everything recorded so far, then write a bundle of it.

    ``workers``: processes that hash the new leaves (see ``ConsentLedger.checkpoint``).

    Without ``positions`` the bundle is complete (every covered event); with them
    (ascending), it holds those events with their audit paths. Returns the checkpoint
    and how many events were written.

    Raises:
        IntegrityError: a chosen event differs from the one that was checkpointed.
    """
    signed = ledger.checkpoint(workers=workers)
    evidence = ledger.tamper_evidence
    writer = BundleWriter(evidence, signed, ledger.verifier_key(), write)
    log = ledger.event_log
    if positions is None:
        writer.header(complete=True, events=signed.size, consistency=[])
        return signed, writer.complete(itertools.islice(stored_events(log), signed.size), progress)
    tree = evidence.tree(signed)
    writer.header(
        complete=False,
        events=len(positions),
        consistency=consistency_proofs(evidence, signed, tree.consistency_proof),
    )
    page: list[StoredRow] = []
    for row in stored_events(log, positions):
        page.append(row)
        if len(page) == READ_PAGE:
            writer.partial(evidence.prove(page, signed, tree), progress)
            page = []
    writer.partial(evidence.prove(page, signed, tree), progress)
    return signed, writer.events


def _line(index: int, digest: bytes, path: list[bytes] | None, record: bytes) -> bytes:
    meta = b'{"leaf_index":%d,"leaf_hash":"%s"' % (index, digest.hex().encode())
    if path is not None:
        meta += b',"path":' + orjson.dumps([p.hex() for p in path])
    return meta + RECORD_KEY + record + b"}\n"


def consistency_proofs(
    evidence: TamperEvidence, checkpoint: SignedCheckpoint, proof: Callable[[int], list[bytes]]
) -> list[dict[str, Any]]:
    """Proofs that ``checkpoint`` extends each earlier checkpoint of the ledger."""
    return [
        {
            "size": earlier.size,
            "root": earlier.checkpoint.root.hex(),
            "proof": [p.hex() for p in proof(earlier.size)],
        }
        for earlier in evidence.checkpoints()
        if earlier.size < checkpoint.size
    ]


# Verifying.
