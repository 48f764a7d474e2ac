"""The ``consent-ledger`` command: record and read consent from the shell.

A thin face over :class:`consent_ledger.ConsentLedger`. Data goes to stdout; errors go
to stderr as one ``Error: ...`` line, with exit status 1 for a refused command or bad
data and 2 for a usage mistake.
"""

from __future__ import annotations

from typing import Any

import click
from consent_ledger.cli._inputs import refuse_undecodable
from consent_ledger.cli.audit import audit
from consent_ledger.cli.consent import change, confirm, marketing_preference, opt_in, opt_out
from consent_ledger.cli.demo import demo
from consent_ledger.cli.dossier import dossier
from consent_ledger.cli.evidence import checkpoint, verify
from consent_ledger.cli.export import export
from consent_ledger.cli.ingest import ingest
from consent_ledger.cli.ledger import business, init
from consent_ledger.cli.notices import notice
from consent_ledger.cli.projections import projections
from consent_ledger.cli.reading import history, status
from consent_ledger.cli.receipts import receipt
from consent_ledger.cli.sending import audience, check
from consent_ledger.cli.templates import template
from pydantic import ValidationError

from consent_ledger import ConsentLedgerError

INTERRUPTED = 130
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_FIELD_WORDS = {"text": "the notice's text", "identifier": "the identifier"}
"""Fields whose option is not named after them; the others read as ``--field-name``."""


def describe(error: ValidationError) -> str:
    """One line naming each invalid value, as the command line spells it, and what is wrong."""
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = _FIELD_WORDS.get(field) or (f"--{field.replace('_', '-')}" if field else "input")
        problems.append(f"{name}: {item['msg']}")
    return "; ".join(problems)


class LedgerGroup(click.Group):
    """Turns the library's errors into one ``Error: ...`` line and exit status 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Refuse arguments that are not UTF-8 text (a usage error), then parse."""
        refuse_undecodable(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, translating ledger and validation errors."""
        try:
            return super().invoke(ctx)
        except ConsentLedgerError as e:
            raise click.ClickException(str(e)) from e
        except ValidationError as e:
            raise click.ClickException(describe(e)) from e
        except KeyboardInterrupt:
            # What a shell reports for SIGINT (128 + 2); every write is one transaction,
            # so an interrupted command has written whole events or none.
            click.echo("Interrupted", err=True)
            ctx.exit(INTERRUPTED)


@click.group(cls=LedgerGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="consent-ledger")
def main() -> None:
    """An append-only, provable ledger of consent for business messaging.

    Record opt-ins, opt-outs and category changes for WhatsApp, SMS and e-mail; ask what a
    person's consent is now or was at any moment; read the full history an auditor asks for.
    Personal data is encrypted per person with keys kept outside the database.
    """


for command in (
    init,
    business,
    notice,
    opt_in,
    opt_out,
    change,
    confirm,
    marketing_preference,
    ingest,
    status,
    history,
    receipt,
    dossier,
    check,
    template,
    audience,
    audit,
    export,
    checkpoint,
    verify,
    projections,
    demo,
):
    main.add_command(command)
