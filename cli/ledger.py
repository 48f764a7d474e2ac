"""``init`` and ``business``: create a ledger and register the businesses it serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from consent_ledger.cli._options import (
    format_option,
    given_before_command,
    ledger_options,
    open_ledger,
)
from consent_ledger.cli._output import write_csv, write_json

from consent_ledger import ConsentLedger, RegisterBusiness

if TYPE_CHECKING:
    from pathlib import Path


@click.command()
@ledger_options
@click.option(
    "--business",
    "business_id",
    metavar="ID",
    callback=given_before_command,
    help="Register a default business.",
)
@click.option("--business-name", metavar="NAME", help="Its name, as people know it.")
def init(
    *, db: str, key_file: Path | None, business_id: str | None, business_name: str | None
) -> None:
    """Create a new ledger and its key material.

    An SQLite ledger (the default) keeps its master key in a file beside the database,
    readable by its owner only. A PostgreSQL ledger needs --key-file (created) or the
    key in CONSENT_LEDGER_KEY.

    \b
    Example:
        consent-ledger init --db ledger.db --business acme --business-name "Acme Outfitters"
    """
    if (business_id is None) != (business_name is None):
        msg = "--business and --business-name go together"
        raise click.UsageError(msg)
    business = (
        RegisterBusiness(business_id=business_id, display_name=business_name)
        if business_id and business_name
        else None
    )
    ledger, key_location = ConsentLedger.create(db, key_file=key_file, business=business)
    ledger.close()
    click.echo(f"Created consent ledger at {db}")
    if key_location.file is not None:
        click.echo(
            f"Master key written to {key_location.file} (mode 0600). Keep it safe and out of "
            "the database's backups: without it the ledger's personal data cannot be read."
        )
    else:
        click.echo(f"Master key taken from {key_location}.")
    if business is not None:
        click.echo(f"Default business: {business.business_id} ({business.display_name})")


@click.group()
def business() -> None:
    """Register and show the businesses whose consent the ledger keeps."""


@business.command("register")
@ledger_options
@click.argument("business_id")
@click.option("--name", "display_name", required=True, help="The name people know it by.")
def register_business(
    *, db: str, key_file: Path | None, business_id: str, display_name: str
) -> None:
    """Register a business.

    \b
    Example:
        consent-ledger business register acme --name "Acme Outfitters"
    """
    ledger = open_ledger(db, key_file)
    info = ledger.register_business(
        RegisterBusiness(business_id=business_id, display_name=display_name)
    )
    click.echo(f"Registered business {info.business_id} ({info.display_name})")


@business.command("show")
@ledger_options
@click.argument("business_id")
@format_option()
def show_business(*, db: str, key_file: Path | None, business_id: str, output_format: str) -> None:
    """Show a business and its notices.

    \b
    Example:
        consent-ledger business show acme --format json
    """
    ledger = open_ledger(db, key_file)
    info = ledger.get_business(business_id)
    row = {
        "business_id": info.business_id,
        "display_name": info.display_name,
        "default": ledger.default_business == business_id,
        "notice_ids": list(info.notice_ids),
    }
    if output_format == "json":
        write_json(row)
    elif output_format == "csv":
        write_csv(list(row), [row | {"notice_ids": " ".join(info.notice_ids)}])
    else:
        default = " (default)" if row["default"] else ""
        click.echo(f"business:     {info.business_id}{default}")
        click.echo(f"name:         {info.display_name}")
        click.echo(f"notices:      {' '.join(info.notice_ids) or '-'}")
