"""``status`` and ``history``: what a person's consent is, and how it came to be."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from consent_ledger.cli._options import (
    TIME,
    business_option,
    format_option,
    identifier_argument,
    ledger_options,
    open_ledger,
    parse_identifier,
    resolve_business,
)
from consent_ledger.cli._output import write_history, write_status

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path


@click.command()
@ledger_options
@business_option
@identifier_argument
@click.option("--at", type=TIME, help="The state at this moment (events that occurred by then).")
@click.option(
    "--known-at",
    type=TIME,
    help="Only what the ledger had recorded by then; alone, the answer it gave at that time.",
)
@format_option()
def status(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    identifier: str,
    region: str | None,
    at: datetime | None,
    known_at: datetime | None,
    output_format: str,
) -> None:
    """Show a person's consent per channel and category: granted, withdrawn, expired, pending.

    Each row says since when, until when, and the event it rests on. --at asks about a past
    moment, counting events that occurred by then even if recorded later; --known-at counts
    only events recorded by then.

    \b
    Example:
        consent-ledger status "+44 7700 900123" --at 2026-10-01
    """
    ledger = open_ledger(db, key_file)
    result = ledger.get_status(
        parse_identifier(identifier, region),
        business_id=resolve_business(ledger, business_id),
        at=at,
        known_at=known_at,
    )
    write_status(result, output_format)


@click.command()
@ledger_options
@business_option
@identifier_argument
@format_option()
def history(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    identifier: str,
    region: str | None,
    output_format: str,
) -> None:
    """Show every event of a person's consent record, oldest first.

    \b
    Example:
        consent-ledger history "+44 7700 900123" --format json
    """
    ledger = open_ledger(db, key_file)
    result = ledger.get_history(
        parse_identifier(identifier, region), business_id=resolve_business(ledger, business_id)
    )
    write_history(result, output_format)
