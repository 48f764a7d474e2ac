"""``dossier``: one person's consent, its notices and its proof, as one printable HTML file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from consent_ledger.cli._files import STDOUT, written
from consent_ledger.cli._options import (
    business_option,
    identifier_argument,
    ledger_options,
    open_ledger,
    parse_identifier,
    resolve_business,
)

if TYPE_CHECKING:
    from pathlib import Path


@click.command()
@ledger_options
@business_option
@identifier_argument
@click.option(
    "--output",
    "-o",
    metavar="FILE|-",
    help="Where to write the dossier ('-': stdout) [default: dossier-SUBJECT_ID.html here].",
)
def dossier(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    identifier: str,
    region: str | None,
    output: str | None,
) -> None:
    """Write a person's consent dossier: one self-contained HTML file that prints well.

    It holds their consent now; every event of their record with its occurred and
    recorded times, method, actor, notice and evidence; the full text of every notice
    version they agreed to, with its hash checked against the one their opt-in recorded;
    and the integrity proof of their events: a checkpoint signed now, the ledger's
    verifier key, and each event's leaf record and audit path. Signing that checkpoint
    is the one thing the command writes to the ledger (as consent-ledger checkpoint
    does); it comes first, so the checkpoint covers every event shown. The file holds the
    person's personal data: it is written readable by its owner only. Prints the path of
    the file written.

    \b
    Examples:
        consent-ledger dossier "+44 7700 900123"
        consent-ledger dossier "+44 7700 900123" --output ada.html
        consent-ledger dossier "+44 7700 900123" -o - > ada.html
    """
    from consent_ledger.reports.dossier import gather_dossier, render_html  # noqa: PLC0415 (its own command)

    ledger = open_ledger(db, key_file)
    who = parse_identifier(identifier, region)
    business = resolve_business(ledger, business_id)
    signed = ledger.checkpoint()  # the command's one write, made here: gathering only reads
    found = gather_dossier(ledger, who, business_id=business, checkpoint=signed)
    document = render_html(found).encode()
    path = output or f"dossier-{found.subject_id}.html"
    with written(path) as out:
        out.write(document)
    if path != STDOUT:
        click.echo(path)
