"""``export``: events as JSON Lines or CSV, filtered, streamed; or a bundle to verify offline."""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from consent_ledger.cli._files import written, written_text
from consent_ledger.cli._options import (
    business_option,
    format_option,
    ledger_options,
    open_ledger,
    parse_identifier,
    resolve_business,
)
from consent_ledger.cli._views import caught_up, view_db_option
from consent_ledger.cli.audit import audit_json, check_business, check_category, event_filters
from consent_ledger.projections import AuditLogView, AuditQuery
from consent_ledger.projections.audit_log import COLUMNS

from consent_ledger.exceptions import InvalidInputError
from consent_ledger.reports.export import write_jsonl
from consent_ledger.storage.log import stored_events

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from uuid import UUID

    from click._termui_impl import ProgressBar

    from consent_ledger import ConsentLedger


@click.command()
@ledger_options
@view_db_option
@business_option
@click.option("--identifier", metavar="PHONE|EMAIL", help="One person's events.")
@click.option("--region", metavar="CC", help="Region for a national phone number (e.g. GB).")
@event_filters
@format_option("jsonl", "csv")
@click.option(
    "--reveal",
    is_flag=True,
    help="Add each person's identifier, opened with the master key (personal data!).",
)
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a bundle an auditor verifies offline (consent-ledger verify FILE) instead: "
    "signs a checkpoint, then writes the events with their proofs.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default="-",
    show_default=True,
    help="Where to write the export ('-': stdout).",
)
def export(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    view_db: str | None,
    business_id: str | None,
    identifier: str | None,
    region: str | None,
    query: AuditQuery,
    output_format: str,
    reveal: bool,
    bundle_path: Path | None,
    output: Path,
) -> None:
    """Export events, filtered, as JSON Lines (whole events) or CSV (one row per event).

    Streams page by page: memory stays flat however large the ledger; a progress bar goes
    to stderr. People appear by subject id only, unless --reveal opens their identifiers.
    Filters select through the audit-log view (caught up first); with none, every event
    is exported straight from the log.

    With --bundle FILE, writes instead one file an auditor can take away and check
    without the ledger: a freshly signed checkpoint, the ledger's public key, and the
    events (all of them, or those the filters select, with the business's notices) with
    the proofs that the checkpoint covers them.

    \b
    Examples:
        consent-ledger export -o events.jsonl
        consent-ledger export --type OptedOut --from 2026-10-01 --to 2026-11-01 --format csv
        consent-ledger export --identifier "+44 7700 900123" --bundle ada.bundle
    """
    ledger = open_ledger(db, key_file)
    subject_id = query.subject_id
    if identifier is not None:
        subject_id = _subject(ledger, identifier, region, business_id, subject_id)
    query = dataclasses.replace(query, business_id=business_id, subject_id=subject_id)
    filtered = query != AuditQuery(business_id=None)
    view = caught_up(ledger.event_log, view_db, db, AuditLogView) if filtered else None
    if view is not None and business_id is not None:
        check_business(view, business_id)
    if view is not None:
        check_category(view, business_id, query.category)
    if bundle_path is not None:
        _write_bundle(ledger, view, query, bundle_path)
    elif output_format == "csv":
        view = view or caught_up(ledger.event_log, view_db, db, AuditLogView)
        with written_text(output) as out:
            _write_csv(ledger, view.query(query), out, reveal=reveal)
    else:
        _write_jsonl(ledger, view, query, output, reveal=reveal)


def _subject(
    ledger: ConsentLedger,
    identifier: str,
    region: str | None,
    business_id: str | None,
    subject_id: UUID | None,
) -> UUID:
    if subject_id is not None:
        msg = "give --identifier or --subject, not both"
        raise click.UsageError(msg)
    business = resolve_business(ledger, business_id)
    found = ledger.find_subject(parse_identifier(identifier, region), business_id=business)
    if found is None:
        msg = f"{business} has no consent record for {identifier}"
        raise InvalidInputError(msg)
    return found


def _write_jsonl(
    ledger: ConsentLedger,
    view: AuditLogView | None,
    query: AuditQuery,
    output: Path,
    *,
    reveal: bool,
) -> None:
    """Whole events, as stored: those the view selects, or every one when there is none."""
    positions = list(view.matching_positions(query)) if view is not None else None
    total = len(positions) if positions is not None else ledger.event_log.head()
    with written(output) as out, _progress(total, "exporting") as advance:
        rows = stored_events(ledger.event_log, positions)
        write_jsonl(rows, out.write, reveal=_revealer(ledger) if reveal else None, progress=advance)


def _write_bundle(
    ledger: ConsentLedger, view: AuditLogView | None, query: AuditQuery, path: Path
) -> None:
    positions = None
    if view is not None:  # the chosen events, and the businesses' and notices' own events
        chosen = view.matching_positions(query)
        notices = view.matching_positions(AuditQuery(stream_types=("Business", "Notice")))
        positions = list(dict.fromkeys(heapq.merge(chosen, notices)))
    total = len(positions) if positions is not None else ledger.event_log.head()
    with written(path) as out, _progress(total, "bundling") as advance:
        from consent_ledger.evidence.bundling import write_bundle  # noqa: PLC0415 (only --bundle)

        signed, count = write_bundle(ledger, out.write, positions, progress=advance, workers=None)
    click.echo(
        f"{path}: {count:,} events under checkpoint {signed.size:,} "
        f"({'complete' if positions is None else 'chosen events, with proofs'})",
        err=True,
    )


def _write_csv(ledger: ConsentLedger, rows: Iterator[Any], out: TextIO, *, reveal: bool) -> None:
    import csv  # noqa: PLC0415

    writer = csv.writer(out)
    writer.writerow([*COLUMNS, "identifier"] if reveal else COLUMNS)
    open_identifier = _revealer(ledger) if reveal else None
    for row in rows:
        data = audit_json(row)
        for key in ("granted", "withdrawn", "confirmed"):
            data[key] = " ".join(data[key])
        values = [data[column] for column in COLUMNS]
        if open_identifier is not None:
            values.append(open_identifier(str(row.subject_id)) if row.subject_id else None)
        writer.writerow(values)


def _revealer(ledger: ConsentLedger) -> Callable[[str], str | None]:
    """Opens a subject's identifier by stream id, remembering the last few thousand."""
    import functools  # noqa: PLC0415
    from uuid import UUID  # noqa: PLC0415

    @functools.lru_cache(maxsize=4096)
    def reveal(stream_id: str) -> str | None:
        return ledger.reveal_identifier(UUID(stream_id))

    return reveal


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    bar: ProgressBar[int]
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update
