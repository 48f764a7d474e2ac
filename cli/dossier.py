"""``dossier``: one person's consent, its notices and its proof, as one printable HTML file."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import click
from consent_ledger.cli._options import (
    business_option,
    identifier_argument,
    ledger_options,
    open_ledger,
    parse_identifier,
    resolve_business,
)

from consent_ledger.dossier import gather_dossier, render_html

STDOUT = "-"


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
    verifier key, and each event's leaf record and audit path. It holds the person's
    personal data: the file is written readable by its owner only. Prints the path of the
    file written.

    \b
    Examples:
        consent-ledger dossier "+44 7700 900123"
        consent-ledger dossier "+44 7700 900123" --output ada.html
        consent-ledger dossier "+44 7700 900123" -o - > ada.html
    """
    ledger = open_ledger(db, key_file)
    found = gather_dossier(
        ledger,
        parse_identifier(identifier, region),
        business_id=resolve_business(ledger, business_id),
    )
    document = render_html(found)
    if output == STDOUT:
        sys.stdout.write(document)
        return
    path = Path(output or f"dossier-{found.subject_id}.html")
    write_atomically(path, document)
    click.echo(path)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a file beside it, then a rename.

    The file is created readable by its owner only (it holds personal data).

    Raises:
        click.ClickException: the file cannot be written there.
    """
    temporary: str | None = None
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(path)
    except OSError as e:
        if temporary is not None:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()
        msg = f"cannot write the dossier to {path}: {e.strerror or e}"
        raise click.ClickException(msg) from e
