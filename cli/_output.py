"""Writing data to stdout as a table, JSON or CSV, with stable keys.

Times are UTC. JSON and CSV give them in full (``2026-11-24T22:40:59.951279Z``);
tables to the second. JSON keys are documented in README.md and never renamed.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
import orjson

from consent_ledger.model.plain import utc_text
from consent_ledger.model.status import EVERY, Overridden, overridden_withdrawals

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from consent_ledger import HistoryEntry, NoticeVersion, SubjectHistory, SubjectStatus
    from consent_ledger.model.history import SendEntry
    from consent_ledger.model.status import ConsentState, PlatformState


def iso(value: datetime | None) -> str | None:
    """A time in full ISO 8601 UTC form, or None."""
    return None if value is None else utc_text(value)


def short_time(value: datetime | None) -> str:
    """A time to the second, for tables."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(data: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.buffer.write(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    )


def write_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as CSV with a header line."""
    writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in columns})


def write_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], empty: str = "(none)"
) -> None:
    """Write rows as aligned text columns under an upper-case header."""
    if not rows:
        click.echo(empty)
        return
    header = [c.upper() for c in columns]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        line = "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo(line.rstrip())


# Status.

STATUS_COLUMNS = (
    "channel",
    "category",
    "sender",
    "state",
    "since",
    "expires_at",
    "notice",
    "notice_hash",
    "event_version",
    "event_type",
)


def consent_json(state: ConsentState) -> dict[str, Any]:
    """One consent row, with its stable JSON keys."""
    return {
        "channel": str(state.channel),
        "category": state.category,
        "sender": state.sender,
        "state": str(state.state),
        "since": iso(state.since),
        "expires_at": iso(state.expires_at),
        "notice": str(state.notice) if state.notice else None,
        "notice_hash": state.notice.content_hash if state.notice else None,
        "event_version": state.event_version,
        "event_type": state.event_type,
    }


def status_json(status: SubjectStatus) -> dict[str, Any]:
    """A person's status, with its stable JSON keys."""
    return {
        "subject_id": str(status.subject_id),
        "business_id": status.business_id,
        "identifier": status.identifier,
        "at": iso(status.at),
        "known_at": iso(status.known_at),
        "consents": [consent_json(c) for c in status.consents],
        "platform_marketing": [platform_json(p) for p in status.platform],
    }


def platform_json(state: PlatformState) -> dict[str, Any]:
    """One sender's platform marketing preference, with its stable JSON keys."""
    return {
        "sender": state.sender,
        "stopped": state.stopped,
        "since": iso(state.since),
        "event_version": state.event_version,
        "event_type": state.event_type,
    }


def write_status(status: SubjectStatus, output_format: str) -> None:
    """Write a person's status in the chosen format."""
    if output_format == "json":
        write_json(status_json(status))
    elif output_format == "csv":
        columns = ("subject_id", *STATUS_COLUMNS)
        write_csv(
            columns,
            ({"subject_id": str(status.subject_id), **consent_json(c)} for c in status.consents),
        )
    else:
        click.echo(_status_caption(status))
        write_table(
            ("channel", "category", "sender", "state", "since", "expires", "notice", "event"),
            [
                (
                    _every(c.channel),
                    _every(c.category),
                    c.sender or "any",
                    c.state,
                    short_time(c.since),
                    short_time(c.expires_at),
                    str(c.notice) if c.notice else "-",
                    f"#{c.event_version} {c.event_type}",
                )
                for c in status.consents
            ],
            empty="(no consent recorded)",
        )
        for overridden in overridden_withdrawals(status.consents):
            click.echo(_later_grants_note(overridden))
        for p in status.platform:
            if p.stopped:
                sender = f"sender {p.sender}" if p.sender else "every sender"
                click.echo(
                    f"WhatsApp marketing stopped by the person for {sender} since "
                    f"{short_time(p.since)} (#{p.event_version} {p.event_type})"
                )


def _later_grants_note(overridden: Overridden) -> str:
    """Which row wins when a withdrawal of (all) sits above grants made after it."""
    withdrawal = overridden.withdrawal
    what = "every category" if withdrawal.category == EVERY else withdrawal.category
    where = "every channel" if withdrawal.channel == EVERY else withdrawal.channel
    later = ", ".join(
        f"{_every(s.category)} ({s.state} by #{s.event_version} {s.event_type}, "
        f"{short_time(s.since)})"
        for s in overridden.later
    )
    return (
        f"Note: #{withdrawal.event_version} {withdrawal.event_type} withdrew {what} on {where} "
        f"at {short_time(withdrawal.since)}; events apply in the order they occurred, so "
        f"what was granted after it stands: {later}"
    )


def _every(name: str) -> str:
    return "(all)" if name == EVERY else name


def _status_caption(status: SubjectStatus) -> str:
    now = datetime.now(UTC)
    when = "now" if abs((now - status.at).total_seconds()) < 1 else f"at {short_time(status.at)}"
    known = (
        ""
        if abs((now - status.known_at).total_seconds()) < 1
        else f", as the ledger knew it at {short_time(status.known_at)}"
    )
    return (
        f"Consent of {status.identifier} towards {status.business_id} {when}{known}"
        f" (subject {status.subject_id})"
    )


# History.

HISTORY_COLUMNS = (
    "version",
    "event_type",
    "occurred_at",
    "recorded_at",
    "channel",
    "sender",
    "granted",
    "withdrawn",
    "confirmed",
    "awaiting_confirmation",
    "notice",
    "notice_hash",
    "method",
    "collection_point",
    "actor",
    "expires_at",
    "legal_basis",
    "jurisdiction",
    "reason",
    "platform_marketing",
    "identifier",
    "linked",
    "signal",
    "evidence",
    "personal_data_erased",
    "notice_published_at",
    "send",
)


def entry_json(entry: HistoryEntry) -> dict[str, Any]:
    """One history entry, with its stable JSON keys."""
    return {
        "version": entry.version,
        "event_type": entry.event_type,
        "occurred_at": iso(entry.occurred_at),
        "recorded_at": iso(entry.recorded_at),
        "channel": None if entry.channel is None else str(entry.channel),
        "sender": entry.sender,
        "granted": list(entry.granted),
        "withdrawn": list(entry.withdrawn),
        "confirmed": list(entry.confirmed),
        "awaiting_confirmation": entry.awaiting_confirmation,
        "notice": str(entry.notice) if entry.notice else None,
        "notice_hash": entry.notice.content_hash if entry.notice else None,
        "method": None if entry.method is None else str(entry.method),
        "collection_point": entry.collection_point,
        "actor": entry.actor,
        "expires_at": iso(entry.expires_at),
        "legal_basis": None if entry.legal_basis is None else str(entry.legal_basis),
        "jurisdiction": entry.jurisdiction,
        "reason": entry.reason,
        "platform_marketing": entry.platform_marketing,
        "identifier": entry.identifier,
        "linked": entry.linked,
        "signal": entry.signal,
        "evidence": entry.evidence.model_dump(exclude_none=True) if entry.evidence else None,
        "personal_data_erased": entry.personal_data_erased,
        "notice_published_at": iso(entry.notice_published_at),
        "send": dataclasses.asdict(entry.send) if entry.send else None,
    }


def change_summary(entry: HistoryEntry) -> str:
    """What an event changed, compactly: ``+granted -withdrawn confirmed:...``."""
    parts = [f"+{c}" for c in entry.granted]
    parts += [f"-{_every(c)}" for c in entry.withdrawn]
    parts += [f"confirmed:{c}" for c in entry.confirmed]
    if entry.awaiting_confirmation:
        parts.append("(awaiting confirmation)")
    if entry.platform_marketing:
        parts.append(f"marketing {entry.platform_marketing} on WhatsApp")
    if entry.linked:
        parts.append(f"now also known by this {entry.linked}")
    if entry.send:
        parts.append(f"sent {entry.send.category} ({entry.send.template_category})")
    return " ".join(parts) or "-"


def _details(entry: HistoryEntry) -> str:
    details = [] if entry.send is None else [_send_details(entry.send)]
    if entry.identifier:
        details.append(f"identifier {entry.identifier}")
    if entry.collection_point:
        details.append(f"at {entry.collection_point}")
    if entry.expires_at:
        details.append(f"expires {short_time(entry.expires_at)}")
    if entry.reason:
        details.append(f"reason {entry.reason!r}")
    if entry.signal:
        details.append(f"reported: {entry.signal}")
    if entry.evidence:
        details.append(f"evidence {entry.evidence.summary()}")
    if entry.personal_data_erased:
        details.append("personal data erased")
    if entry.before_its_notice:
        details.append(
            f"dated before {entry.notice} was published ({short_time(entry.notice_published_at)})"
        )
    return "; ".join(details)


def _send_details(send: SendEntry) -> str:
    verdict = "allowed" if send.allowed else "NOT allowed"
    rests_on = f", rests on #{send.rests_on}" if send.rests_on is not None else ""
    template = f"template {send.template}; " if send.template else ""
    return (
        f"{verdict} ({send.reason}{rests_on}) under {send.policy}; {template}"
        f"message {send.message[:12]}"
    )


def history_json(history: SubjectHistory) -> dict[str, Any]:
    """A person's history, with its stable JSON keys."""
    return {
        "subject_id": str(history.subject_id),
        "business_id": history.business_id,
        "identifier": history.identifier,
        "events": [entry_json(e) for e in history.entries],
    }


def write_history(history: SubjectHistory, output_format: str) -> None:
    """Write a person's history in the chosen format."""
    if output_format == "json":
        write_json(history_json(history))
    elif output_format == "csv":
        rows = []
        for entry in history.entries:
            row = entry_json(entry)
            row.update(
                {k: " ".join(row[k]) for k in ("granted", "withdrawn", "confirmed")},
                evidence=entry.evidence.summary() if entry.evidence else None,
            )
            rows.append({"subject_id": str(history.subject_id), **row})
        write_csv(("subject_id", *HISTORY_COLUMNS), rows)
    else:
        click.echo(
            f"History of {history.identifier} with {history.business_id}"
            f" (subject {history.subject_id})"
        )
        write_table(
            (
                "#",
                "event",
                "occurred",
                "recorded",
                "channel",
                "change",
                "method",
                "actor",
                "notice",
                "details",
            ),
            [
                (
                    str(e.version),
                    e.event_type,
                    short_time(e.occurred_at),
                    short_time(e.recorded_at),
                    _every(e.channel) if e.channel else "-",
                    change_summary(e),
                    e.method or "-",
                    e.actor or "-",
                    str(e.notice) if e.notice else "-",
                    _details(e),
                )
                for e in history.entries
            ],
        )


# Notices.


def notice_json(notice: NoticeVersion) -> dict[str, Any]:
    """One notice version, with its stable JSON keys."""
    return {
        "business_id": notice.business_id,
        "notice_id": notice.notice_id,
        "version": notice.version,
        "business_name": notice.business_name,
        "language": notice.language,
        "channel": str(notice.channel),
        "categories": list(notice.categories),
        "content_hash": notice.content_hash,
        "policy_url": notice.policy_url,
        "published_at": iso(notice.published_at),
        "text": notice.text,
    }


def write_notices(notices: Sequence[NoticeVersion], output_format: str) -> None:
    """Write a list of notice versions (without their text in tables and CSV)."""
    if output_format == "json":
        write_json([notice_json(n) for n in notices])
        return
    columns = ("notice", "language", "channel", "categories", "content_hash", "published_at")
    rows = [
        (
            f"{n.notice_id}@{n.version}",
            n.language,
            str(n.channel),
            " ".join(n.categories),
            n.content_hash,
            short_time(n.published_at),
        )
        for n in notices
    ]
    if output_format == "csv":
        write_csv(columns, (dict(zip(columns, row, strict=True)) for row in rows))
    else:
        write_table(columns, rows)


def write_notice(notice: NoticeVersion, output_format: str) -> None:
    """Write one notice version with its full text."""
    if output_format == "json":
        write_json(notice_json(notice))
        return
    if output_format == "csv":
        row = notice_json(notice)
        write_csv(list(row), [row | {"categories": " ".join(notice.categories)}])
        return
    fields = [
        ("notice", f"{notice.notice_id}@{notice.version}"),
        ("business", f"{notice.business_name} ({notice.business_id})"),
        ("language", notice.language),
        ("channel", str(notice.channel)),
        ("categories", " ".join(notice.categories)),
        ("content hash", notice.content_hash),
        ("policy url", notice.policy_url or "-"),
        ("published at", short_time(notice.published_at)),
    ]
    for name, value in fields:
        click.echo(f"{name + ':':14}{value}")
    click.echo("")
    click.echo(notice.text)
