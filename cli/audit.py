"""``audit``: the auditor's questions over every event, from the audit-log view."""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, cast

import click
from consent_ledger.cli._options import (
    TIME,
    F,
    business_option,
    format_option,
    ledger_options,
)
from consent_ledger.cli._output import iso, short_time, write_csv, write_json, write_table
from consent_ledger.cli._values import CHANNEL_FILTER, NOTICE, one_category_option
from consent_ledger.cli._views import caught_up, view_db_option
from consent_ledger.projections import AuditLogView, AuditQuery, AuditRow
from consent_ledger.projections.audit_log import COLUMNS, EVENT_TYPES

from consent_ledger.exceptions import BusinessNotFoundError, NoticeNotFoundError
from consent_ledger.model.taxonomy import CATEGORIES, Method, unknown_category
from consent_ledger.storage.log import EventLog

if TYPE_CHECKING:
    from pathlib import Path

    from consent_ledger.model.commands import NoticeSelector


_FILTERS = (
    "subject_id",
    "channel",
    "category",
    "event_types",
    "occurred_from",
    "occurred_to",
    "recorded_from",
    "recorded_to",
)

_TABLE_COLUMNS = (  # audit's table: one event a row
    "#",
    "event",
    "occurred",
    "recorded",
    "business",
    "subject",
    "channel",
    "categories",
    "method",
    "notice",
)


def event_filters(command: F) -> F:
    """The filters ``audit`` and ``export`` share, handed to the command as ``query``.

    ``query`` is an :class:`AuditQuery` of these options alone (no business, which the
    command resolves); the command narrows it further with ``dataclasses.replace``.
    """

    @functools.wraps(command)
    def with_query(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _FILTERS}
        values["event_types"] = values["event_types"] or None
        return command(query=AuditQuery(**values), **kwargs)

    options = (
        click.option("--subject", "subject_id", type=click.UUID, help="One subject's events."),
        click.option(
            "--channel",
            type=CHANNEL_FILTER,
            help="Events on this channel ('*': every-channel opt-outs).",
        ),
        one_category_option("Events that name this category."),
        click.option(
            "--type",
            "event_types",
            multiple=True,
            type=click.Choice(EVENT_TYPES),
            metavar="EVENT",
            help="Events of this type, e.g. OptedOut (repeatable; a wrong one lists them all).",
        ),
        click.option("--from", "occurred_from", type=TIME, help="Occurred at or after this time."),
        click.option("--to", "occurred_to", type=TIME, help="Occurred before this time."),
        click.option("--recorded-from", type=TIME, help="Recorded at or after this time."),
        click.option("--recorded-to", type=TIME, help="Recorded before this time."),
    )
    for option in reversed(options):
        with_query = option(with_query)
    return cast("F", with_query)


def audit_json(row: AuditRow) -> dict[str, Any]:
    """One audit row, with its stable JSON keys."""
    data = {column: getattr(row, column) for column in COLUMNS}
    data.update(
        stream_id=str(row.stream_id),
        subject_id=str(row.subject_id) if row.subject_id else None,
        granted=list(row.granted),
        withdrawn=list(row.withdrawn),
        confirmed=list(row.confirmed),
        occurred_at=iso(row.occurred_at),
        recorded_at=iso(row.recorded_at),
    )
    return data


@click.command()
@ledger_options
@view_db_option
@business_option
@event_filters
@click.option("--method", type=click.Choice([m.value for m in Method]), help="Collected this way.")
@click.option("--notice", type=NOTICE, help="Backed by this notice (version).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@format_option()
def audit(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    view_db: str | None,
    business_id: str | None,
    query: AuditQuery,
    method: str | None,
    notice: NoticeSelector | None,
    limit: int | None,
    output_format: str,
) -> None:
    """List events across all people, filtered: what an auditor asks of the whole ledger.

    Reads the audit-log view (caught up first); no master key needed, and no personal data
    is shown: people appear by subject id.

    \b
    Examples:
        consent-ledger audit --type OptedOut --from 2026-10-01 --to 2026-11-01
        consent-ledger audit --type OptedIn --method web-form --notice whatsapp-optin@2
    """
    del key_file
    with EventLog.open(db) as log:
        view = caught_up(log, view_db, db, AuditLogView)
        if business_id is not None:
            check_business(view, business_id)
        check_category(view, business_id, query.category)
        query = dataclasses.replace(
            query,
            business_id=business_id,
            method=method,
            notice_id=notice.notice_id if notice else None,
            notice_version=notice.version if notice else None,
            limit=limit,
        )
        rows = list(view.query(query))
        if not rows and notice is not None:  # a typo, or a notice no event rests on?
            check_notice(view, business_id, notice)
    _write_rows(rows, output_format)


def check_business(view: AuditLogView, business_id: str) -> None:
    """Refuse a business the log never registered: a typo would read as "no events".

    Raises:
        BusinessNotFoundError: names the businesses there are.
    """
    registered = AuditQuery(
        business_id=business_id,
        stream_types=("Business",),
        event_types=("Registered",),
        limit=1,
    )
    if next(view.query(registered), None) is None:
        known = ", ".join(view.business_ids()) or "none"
        msg = f"no business {business_id!r} in this ledger (businesses: {known})"
        raise BusinessNotFoundError(msg)


def check_category(view: AuditLogView, business_id: str | None, category: str | None) -> None:
    """Refuse a category neither built in nor defined (by the business, if one is named).

    Raises:
        UnknownCategoryError: names the categories there are.
    """
    if category is None or category in CATEGORIES:
        return
    defined = view.categories_defined(business_id)
    if category not in defined:
        names = [*CATEGORIES, *(name for name, retired in defined.items() if not retired)]
        retired = [name for name, retired in defined.items() if retired]
        if business_id is None:
            raise unknown_category(category, names, retired, "categories in this ledger")
        raise unknown_category(category, names, retired)


def check_notice(view: AuditLogView, business_id: str | None, notice: NoticeSelector) -> None:
    """Refuse a notice (or version) never published, of the business if one is named.

    Raises:
        NoticeNotFoundError: names the notices there are, or the notice's versions.
    """
    versions = view.notice_versions(business_id)
    latest = versions.get(notice.notice_id)
    if latest is None:
        known = ", ".join(versions) or "none"
        whose = "in this ledger" if business_id is None else f"of business {business_id!r}"
        msg = f"no notice {notice.notice_id!r} {whose} (notices: {known})"
        raise NoticeNotFoundError(msg)
    if notice.version is not None and notice.version > latest:
        msg = (
            f"notice {notice.notice_id!r} has no version {notice.version} (versions 1 to {latest})"
        )
        raise NoticeNotFoundError(msg)


def _write_rows(rows: list[AuditRow], output_format: str) -> None:
    """The matching events as JSON, CSV or a table."""
    if output_format == "json":
        write_json([audit_json(r) for r in rows])
    elif output_format == "csv":
        write_csv(
            COLUMNS,
            (
                audit_json(r)
                | {k: " ".join(getattr(r, k)) for k in ("granted", "withdrawn", "confirmed")}
                for r in rows
            ),
        )
    else:
        write_table(_TABLE_COLUMNS, [_table_row(r) for r in rows], empty="(no events match)")


def _table_row(r: AuditRow) -> tuple[str, ...]:
    """One event as a row of the table: ``-`` for what it does not have."""
    return (
        str(r.position),
        r.event_type if r.stream_type == "ConsentRecord" else f"{r.stream_type}.{r.event_type}",
        short_time(r.occurred_at),
        short_time(r.recorded_at),
        r.business_id or "-",
        str(r.subject_id) if r.subject_id else "-",
        r.channel or "-",
        " ".join(
            [
                *(f"+{c}" for c in r.granted),
                *(f"-{c}" for c in r.withdrawn),
                *(f"confirmed:{c}" for c in r.confirmed),
            ]
        )
        or "-",
        r.method or "-",
        f"{r.notice_id}@{r.notice_version}" if r.notice_version else (r.notice_id or "-"),
    )
