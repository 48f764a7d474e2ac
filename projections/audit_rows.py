"""What the audit log's row of an event says: the event classes read, one by one.

Apart from :mod:`.audit_log` so that importing the view (to query it, or to find it caught
up) does not define every event class: :meth:`AuditLogView.apply` imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consent_ledger.model.business import Business
from consent_ledger.model.consent_record import ConsentRecord
from consent_ledger.model.notice import Notice
from consent_ledger.model.plain import utc_text
from consent_ledger.model.template import Template

if TYPE_CHECKING:
    from datetime import datetime


def _stamp(moment: datetime | None) -> str | None:
    return utc_text(moment) if moment is not None else None


@dataclass(frozen=True, slots=True)
class Stream:
    """What a stream's first event says of the stream: its business, its notice."""

    business_id: str | None
    notice_id: str | None


def first_named(event: Any) -> Stream:
    """The :class:`Stream` a stream's first event names."""
    match event:
        case ConsentRecord.SubjectRegistered() | Business.Registered() | Template.Registered():
            return Stream(event.business_id, None)
        case Notice.Registered():
            return Stream(event.business_id, event.notice_id)
    return Stream(None, None)


def event_row(position: int, event: Any, stream_id: str, stream: Stream) -> tuple[Any, ...]:
    """The audit log's row of one event, in the order of its columns."""
    details: dict[str, Any] = {"business_id": stream.business_id, "subject_id": None}
    if isinstance(event, ConsentRecord.SubjectRegistered):
        details["subject_id"] = stream_id
    elif isinstance(event, ConsentRecord.Change):
        details.update(subject_id=stream_id, **_change(event))
    elif isinstance(event, Notice.Registered):
        details["notice_id"] = event.notice_id
    elif isinstance(event, Notice.VersionPublished):
        details.update(channel=str(event.channel), granted=" ".join(event.categories))
        details.update(notice_id=stream.notice_id, notice_version=event.version)
    elif isinstance(event, Business.NoticeAdded):
        details["notice_id"] = event.notice_id
    elif isinstance(event, Business.CategoryDefined):
        details["granted"] = event.name  # as a notice's categories: what it makes available
    elif isinstance(event, Business.CategoryRetired):
        details["withdrawn"] = event.name
    return (
        position,
        type(event).__qualname__.split(".")[0],
        stream_id,
        event.originator_version,
        type(event).__name__,
        details["business_id"],
        details["subject_id"],
        details.get("channel"),
        details.get("sender"),
        details.get("granted", ""),
        details.get("withdrawn", ""),
        details.get("confirmed", ""),
        details.get("method"),
        details.get("collection_point"),
        details.get("actor"),
        details.get("notice_id"),
        details.get("notice_version"),
        _stamp(details.get("occurred_at")),
        utc_text(event.timestamp),
    )


def _change(event: ConsentRecord.Change) -> dict[str, Any]:
    provenance = event.provenance
    details: dict[str, Any] = {
        "method": str(provenance.method),
        "collection_point": provenance.collection_point,
        "actor": provenance.actor,
        "occurred_at": provenance.occurred_at,
        "sender": getattr(event, "sender", None),
    }
    channel = getattr(event, "channel", None)
    details["channel"] = str(channel) if channel else "*"
    notice = getattr(event, "notice", None)
    if notice is not None:
        details.update(notice_id=notice.notice_id, notice_version=notice.version)
    match event:
        case ConsentRecord.OptedIn():
            details["granted"] = " ".join(event.categories)
        case ConsentRecord.OptInConfirmed():
            details["confirmed"] = " ".join(event.categories)
        case ConsentRecord.OptedOut():
            details["withdrawn"] = " ".join(event.categories or ("*",))
        case ConsentRecord.CategoriesChanged():
            details.update(granted=" ".join(event.granted), withdrawn=" ".join(event.withdrawn))
        case ConsentRecord.SignalReceived():
            details["channel"] = "whatsapp"
        case ConsentRecord.IdentifierLinked():
            details["channel"] = None  # who the person is, on no channel
        case ConsentRecord.PlatformMarketingStopped() | ConsentRecord.PlatformMarketingResumed():
            details["channel"] = "whatsapp"
    return details
