"""The facts of a person's dossier, read from the ledger and nothing else.

A dossier holds, for one person and one business: their consent now, every event of
their record (when it occurred and when it was recorded, how, by whom, on which notice,
with what evidence), the full text of every notice version they agreed to (with its hash
recomputed and compared with the hash their opt-in recorded), and the integrity proof of
their events: a signed checkpoint, the key that verifies it, and for each event its leaf
record, exactly as hashed, with the audit path to the signed root.

:func:`gather_dossier` only reads. Signing the checkpoint the proofs lead to is a write
(it adds leaves and a checkpoint to the ledger), so the caller does it first and passes
the checkpoint in: ``gather_dossier(ledger, who, business_id=b, checkpoint=ledger.checkpoint())``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from consent_ledger.evidence.merkle import leaf_hash
from consent_ledger.exceptions import InvalidInputError, NoticeNotFoundError
from consent_ledger.model.notice import content_hash
from consent_ledger.model.status import EVERY, Overridden, overridden_withdrawals
from consent_ledger.storage.log import event_types

if TYPE_CHECKING:
    from uuid import UUID

    from consent_ledger.application.catalogue import BusinessInfo
    from consent_ledger.evidence.integrity import SignedCheckpoint
    from consent_ledger.ledger import ConsentLedger
    from consent_ledger.model.history import HistoryEntry, SubjectHistory, SubjectStatus
    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.notice import NoticeVersion
    from consent_ledger.model.taxonomy import Category
    from consent_ledger.model.values import NoticeRef
    from consent_ledger.storage.log import StoredRow


class CheckpointCoverageError(InvalidInputError):
    """The checkpoint given does not cover every event of the person's record."""


@dataclass(frozen=True)
class NoticeCheck:
    """A notice version the person agreed to, and whether its text has the hash recorded."""

    ref: NoticeRef
    notice: NoticeVersion | None  # None: the ledger holds no such version
    events: tuple[int, ...]  # the versions of the person's events that rest on it

    @property
    def text_hash(self) -> str | None:
        """The hash of the notice's text, computed now as the ledger computes it."""
        return None if self.notice is None else content_hash(self.notice.text)

    @property
    def matches(self) -> bool:
        """Whether the text hashes to the hash the opt-in recorded (and the notice keeps)."""
        return self.notice is not None and (
            self.text_hash == self.ref.content_hash == self.notice.content_hash
        )


@dataclass(frozen=True)
class EventProof:
    """One of the person's stored events, and the audit path to the checkpoint's root."""

    position: int
    version: int
    event_type: str
    leaf_index: int
    record: bytes
    path: list[bytes]

    @property
    def leaf_hash(self) -> bytes:
        """``SHA-256(0x00 || record)``."""
        return leaf_hash(self.record)


@dataclass(frozen=True)
class Dossier:
    """Everything a dossier shows about one person's consent towards one business."""

    business: BusinessInfo
    ledger_id: str
    generated_at: datetime
    status: SubjectStatus
    history: SubjectHistory
    notices: list[NoticeCheck]
    checkpoint: SignedCheckpoint
    verifier_key: str
    proofs: list[EventProof]
    categories: dict[str, Category] = field(default_factory=dict)
    """The business's categories by name, the built-in ones and its own."""

    @property
    def subject_id(self) -> UUID:
        """The id of the person's consent record."""
        return self.history.subject_id

    @property
    def overridden(self) -> list[Overridden]:
        """Withdrawals of every category that grants made after them override, row by row."""
        return overridden_withdrawals(self.status.consents)

    @property
    def categories_named(self) -> list[Category]:
        """The categories the person's consent, events and notices name, as first named."""
        names = [state.category for state in self.status.consents]
        for entry in self.history.entries:
            names += [*entry.granted, *entry.withdrawn, *entry.confirmed]
        for check in self.notices:
            names += check.notice.categories if check.notice is not None else ()
        named = dict.fromkeys(name for name in names if name != EVERY)
        return [self.categories[name] for name in named if name in self.categories]

    @property
    def erased(self) -> bool:
        """Whether the person's data key is gone, so their personal data cannot be read."""
        return self.history.identifier is None

    def proof_of(self, version: int) -> EventProof | None:
        """The proof of the person's event ``version``, if the checkpoint covers it."""
        return next((proof for proof in self.proofs if proof.version == version), None)


def gather_dossier(
    ledger: ConsentLedger,
    identifier: Identifier | str,
    *,
    business_id: str,
    checkpoint: SignedCheckpoint,
    now: datetime | None = None,
) -> Dossier:
    """Collect a person's dossier, proving their events under ``checkpoint``; writes nothing.

    Args:
        ledger: The ledger to read.
        identifier: The person, as any identifier their record is found by.
        business_id: The business their consent is towards.
        checkpoint: A checkpoint of this ledger signed after the person's latest event,
            usually ``ledger.checkpoint()`` called just before.
        now: The moment the current state is given for (default: now).

    Returns:
        The facts of the dossier, ready for :func:`~consent_ledger.reports.dossier.render_html`.

    Raises:
        SubjectNotFoundError: The person has no consent record with the business.
        BusinessNotFoundError: The business is not registered.
        CheckpointCoverageError: ``checkpoint`` is another ledger's, or older than the
            person's latest event: sign a new one and gather again.
        IntegrityError: The person's events are not as the ledger's tree holds them.
    """
    now = now or datetime.now(UTC)
    business = ledger.get_business(business_id)
    status = ledger.get_status(identifier, business_id=business_id, at=now, known_at=now)
    history = ledger.get_history(identifier, business_id=business_id)
    rows = ledger.event_log.read_stream(history.subject_id)  # after history: covers it
    check_checkpoint_covers(ledger, checkpoint, rows)
    return Dossier(
        business=business,
        ledger_id=ledger.event_log.ledger_id,
        generated_at=now,
        status=status,
        history=history,
        notices=_notice_checks(ledger, business_id, history.entries),
        checkpoint=checkpoint,
        verifier_key=ledger.verifier_key().text,
        proofs=_proofs(ledger, rows, checkpoint),
        categories={c.name: c for c in ledger.list_categories(business_id)},
    )


def check_checkpoint_covers(
    ledger: ConsentLedger, checkpoint: SignedCheckpoint, rows: list[StoredRow]
) -> None:
    """Refuse a checkpoint that cannot prove every one of ``rows`` (one person's events).

    The proofs would fail anyway, but as an :class:`IntegrityError`, which says the
    ledger was tampered with; a checkpoint that is merely old or foreign is the caller's
    mistake, and the fix is to sign a new one.

    Raises:
        CheckpointCoverageError: ``checkpoint`` is another ledger's, or does not reach
            the last of ``rows``.
    """
    evidence = ledger.tamper_evidence
    if checkpoint.checkpoint.origin != evidence.origin:
        msg = (
            f"checkpoint {checkpoint.size} was signed for {checkpoint.checkpoint.origin!r}, "
            f"not this ledger ({evidence.origin!r})"
        )
        raise CheckpointCoverageError(msg)
    position, subject_id, version, _, _ = rows[-1]  # a record holds at least its registration
    # Leaves are in log order, so a checkpoint covers every position up to its last leaf's.
    covered_to = 0
    if checkpoint.size:
        last = evidence.kept_leaves(checkpoint.size - 1, 1)
        if not last:
            return  # the kept leaves are gone: the proofs say so, as an IntegrityError
        covered_to = last[0][0]
    if position > covered_to:
        msg = (
            f"checkpoint {checkpoint.size} does not cover event #{version} of subject "
            f"{subject_id} (log position {position}), recorded after it was signed: sign "
            "a new checkpoint (consent-ledger checkpoint) and gather the dossier again"
        )
        raise CheckpointCoverageError(msg)


def _notice_checks(
    ledger: ConsentLedger, business_id: str, entries: list[HistoryEntry]
) -> list[NoticeCheck]:
    """Each distinct notice version the person's events rest on, in first-seen order."""
    events: dict[NoticeRef, list[int]] = {}
    for entry in entries:
        if entry.notice is not None:
            events.setdefault(entry.notice, []).append(entry.version)
    checks = []
    for ref, versions in events.items():
        try:
            notice: NoticeVersion | None = ledger.get_notice(
                business_id, ref.notice_id, ref.version
            )
        except NoticeNotFoundError:
            notice = None
        checks.append(NoticeCheck(ref, notice, tuple(versions)))
    return checks


def _proofs(
    ledger: ConsentLedger, rows: list[StoredRow], signed: SignedCheckpoint
) -> list[EventProof]:
    evidence = ledger.tamper_evidence
    proven = evidence.prove(rows, signed, evidence.tree(signed))
    return [
        EventProof(row[0], row[2], event_types(row[3])[1], each.leaf_index, each.record, each.path)
        for row, each in zip(rows, proven, strict=True)
    ]
