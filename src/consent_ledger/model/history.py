"""What the ledger answers about one person: their status and their history, as plain records.

These are read-only views over a subject's events, with personal data opened for the
caller. When a subject's data key is gone (erased), the facts stay and the personal data
reads as ``None`` with ``personal_data_erased`` set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consent_ledger.model.commands import Evidence
from consent_ledger.model.consent_record import ConsentRecord
from consent_ledger.model.status import EVERY

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from consent_ledger.model.status import ConsentState, PlatformState
    from consent_ledger.model.values import NoticeRef, Sealed

Unseal = Callable[["Sealed | None", int, str], Any]
"""Opens a sealed value of the event at a version, for a purpose; None if erased."""


@dataclass(frozen=True, slots=True)
class SubjectStatus:
    """A person's consent at ``at``, as the ledger knew it at ``known_at``."""

    subject_id: UUID
    business_id: str
    identifier: str | None
    at: datetime
    known_at: datetime
    consents: list[ConsentState]
    platform: list[PlatformState]


@dataclass(frozen=True, slots=True)
class SendEntry:
    """A message sent to the person, and the decision it rested on when it was recorded."""

    message: str
    """The message id's keyed hash (hex): whoever holds the id can match it; nobody else."""
    category: str
    template: str | None
    template_category: str
    policy: str
    allowed: bool
    reason: str
    rests_on: int | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One event of a person's consent history, with everything an auditor asks of it."""

    version: int
    event_type: str
    occurred_at: datetime | None  # None for SubjectRegistered: bookkeeping, not a decision
    recorded_at: datetime
    channel: str | None = None
    sender: str | None = None
    granted: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] = ()
    confirmed: tuple[str, ...] = ()
    awaiting_confirmation: bool = False
    notice: NoticeRef | None = None
    method: str | None = None
    collection_point: str | None = None
    actor: str | None = None
    expires_at: datetime | None = None
    legal_basis: str | None = None
    jurisdiction: str | None = None
    reason: str | None = None
    platform_marketing: str | None = None  # "stopped" or "resumed" on the platform
    identifier: str | None = None
    linked: str | None = None  # on IdentifierLinked: the kind of the identifier (wa, bsuid)
    signal: str | None = None  # on SignalReceived: what the platform reported, in words
    evidence: Evidence | None = None
    personal_data_erased: bool = False
    notice_published_at: datetime | None = None
    """When the notice version the event names was published in the ledger."""
    send: SendEntry | None = None
    """On MessageSent: the send and its decision."""

    @property
    def before_its_notice(self) -> bool:
        """Whether the decision is dated before its notice version was published.

        The ledger accepts it (a paper form is entered late; a business brings in
        consent given to wording it publishes here afterwards) and flags it: the
        wording the person saw was entered in the ledger after they agreed.
        """
        return (
            self.occurred_at is not None
            and self.notice_published_at is not None
            and self.occurred_at < self.notice_published_at
        )


@dataclass(frozen=True, slots=True)
class SubjectHistory:
    """Every event of a person's consent record, oldest first."""

    subject_id: UUID
    business_id: str
    identifier: str | None
    entries: list[HistoryEntry]
    identifier_kind: str | None = None
    """The kind of ``identifier``: the one the record was registered by (phone, wa, ...)."""


def history_entry(event: Any, unseal: Unseal) -> HistoryEntry:
    """The history entry of one ConsentRecord event."""
    version = event.originator_version
    if isinstance(event, ConsentRecord.SubjectRegistered):
        identifier = unseal(event.identifier, version, "identifier")
        return HistoryEntry(
            version=version,
            event_type="SubjectRegistered",
            occurred_at=None,
            recorded_at=event.timestamp,
            identifier=identifier,
            personal_data_erased=identifier is None,
        )
    change: ConsentRecord.Change = event
    evidence = None
    if change.evidence is not None:
        opened = unseal(change.evidence, version, "evidence")
        evidence = None if opened is None else Evidence.model_validate(opened)
    return HistoryEntry(
        version=version,
        event_type=type(change).__name__,
        occurred_at=change.provenance.occurred_at,
        recorded_at=change.timestamp,
        method=change.provenance.method,
        collection_point=change.provenance.collection_point,
        actor=change.provenance.actor,
        evidence=evidence,
        personal_data_erased=change.evidence is not None and evidence is None,
        **_change_details(change, unseal),
    )


def _identity_or_signal(change: ConsentRecord.Change, unseal: Unseal) -> dict[str, Any] | None:
    """The details of a change that is not about consent: a signal, a linked identifier."""
    match change:
        case ConsentRecord.SignalReceived():
            return {"channel": "whatsapp", "sender": change.sender, "signal": change.detail}
        case ConsentRecord.IdentifierLinked():
            identifier = unseal(change.identifier, change.originator_version, "identifier")
            return {"identifier": identifier, "linked": str(change.identifier_kind)}
        case ConsentRecord.MessageSent():
            return {"channel": change.channel, "sender": change.sender, "send": _send(change)}
    return None


def _send(sent: ConsentRecord.MessageSent) -> SendEntry:
    template = f"{sent.template_name} ({sent.template_language})" if sent.template_name else None
    return SendEntry(
        message=sent.message,
        category=sent.category,
        template=template,
        template_category=str(sent.template_category),
        policy=sent.policy,
        allowed=sent.allowed,
        reason=sent.reason,
        rests_on=sent.rests_on,
    )


def _change_details(change: ConsentRecord.Change, unseal: Unseal) -> dict[str, Any]:
    other = _identity_or_signal(change, unseal)
    if other is not None:
        return other
    match change:
        case ConsentRecord.OptedIn():
            return {
                "channel": change.channel,
                "sender": change.sender,
                "granted": change.categories,
                "awaiting_confirmation": change.awaiting_confirmation,
                "notice": change.notice,
                "expires_at": change.expires_at,
                "legal_basis": change.legal_basis,
                "jurisdiction": change.jurisdiction,
            }
        case ConsentRecord.OptInConfirmed():
            return {
                "channel": change.channel,
                "sender": change.sender,
                "confirmed": change.categories,
            }
        case ConsentRecord.OptedOut():
            return {
                "channel": change.channel or EVERY,
                "sender": change.sender,
                "withdrawn": change.categories or (EVERY,),
                "reason": unseal(change.reason, change.originator_version, "reason"),
            }
        case ConsentRecord.CategoriesChanged():
            return {
                "channel": change.channel,
                "sender": change.sender,
                "granted": change.granted,
                "withdrawn": change.withdrawn,
                "notice": change.notice,
                "expires_at": change.expires_at,
                "legal_basis": change.legal_basis if change.granted else None,
                "jurisdiction": change.jurisdiction,
            }
        case ConsentRecord.PlatformMarketingStopped() | ConsentRecord.PlatformMarketingResumed():
            stopped = isinstance(change, ConsentRecord.PlatformMarketingStopped)
            return {
                "channel": "whatsapp",
                "sender": change.sender,
                "platform_marketing": "stopped" if stopped else "resumed",
            }
    msg = f"unexpected consent event {type(change).__name__}"
    raise TypeError(msg)
