"""``receipt``: a person's grants of consent as Kantara Consent Receipts (v1.1), in JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from consent_ledger.cli._options import (
    business_option,
    identifier_argument,
    ledger_options,
    open_ledger,
    parse_identifier,
    resolve_business,
)
from consent_ledger.cli._output import write_json

from consent_ledger.reports.receipts import receipt as one_receipt
from consent_ledger.reports.receipts import receipts

if TYPE_CHECKING:
    from pathlib import Path


@click.command()
@ledger_options
@business_option
@identifier_argument
@click.option(
    "--version",
    type=click.IntRange(min=1),
    metavar="N",
    help="Only the receipt of event N of the person's record (as history numbers it).",
)
@click.option(
    "--reveal",
    is_flag=True,
    help="Name the person by their identifier (opened with the master key), not by subject id.",
)
def receipt(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    identifier: str,
    region: str | None,
    version: int | None,
    reveal: bool,
) -> None:
    """Write a consent receipt for each of a person's opt-ins, in the Kantara v1.1 shape.

    One receipt per event that granted consent (opt-ins, and changes that granted
    categories), oldest first, as a JSON list; with --version, that event's receipt alone.
    The person is named by their subject id unless --reveal is given. A double opt-in's
    receipt says whether it was confirmed. The ledger's own references (event, notice and
    its hash) are under "x-consent-ledger"; required fields the ledger has no data for
    read "not recorded" and are listed there.

    \b
    Examples:
        consent-ledger receipt "+44 7700 900123" > receipts.json
        consent-ledger receipt "+44 7700 900123" --version 2 --reveal
    """
    ledger = open_ledger(db, key_file)
    person = parse_identifier(identifier, region)
    business = resolve_business(ledger, business_id)
    if version is None:
        write_json(receipts(ledger, person, business_id=business, reveal=reveal))
    else:
        write_json(
            one_receipt(ledger, person, business_id=business, version=version, reveal=reveal)
        )
