"""The ``consent-ledger`` command: record and read consent from the shell.

A thin face over :class:`consent_ledger.ConsentLedger`. Data goes to stdout; errors go
to stderr as one ``Error: ...`` line, with exit status 1 for a refused command or bad
data and 2 for a usage mistake.

Each command's module is imported only when that command runs (:data:`COMMANDS` names
them): a ``check`` loads what a check needs, and ``--help`` lists every command without
importing any.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

import click
from consent_ledger.cli._inputs import refuse_undecodable
from consent_ledger.cli._options import business_option, ledger_options

from consent_ledger.exceptions import ConsentLedgerError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import ValidationError

INTERRUPTED = 130
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:attribute", the first paragraph of its help, as --help lists it)
    "audience": (
        "consent_ledger.cli.sending:audience",
        "Stream everyone a message of a category may be sent to now, identifiers opened.",
    ),
    "audit": (
        "consent_ledger.cli.audit:audit",
        "List events across all people, filtered: what an auditor asks of the whole ledger.",
    ),
    "business": (
        "consent_ledger.cli.ledger:business",
        "Register and show the businesses whose consent the ledger keeps.",
    ),
    "category": (
        "consent_ledger.cli.categories:category",
        "Define, list and retire the categories people consent to, a business's own included.",
    ),
    "change": (
        "consent_ledger.cli.consent:change",
        "Record one decision that grants some categories and withdraws others.",
    ),
    "check": (
        "consent_ledger.cli.sending:check",
        "May a message of a category be sent to this person? Exit 0 if allowed, 3 if denied.",
    ),
    "checkpoint": (
        "consent_ledger.cli.evidence:checkpoint",
        "Sign the log as it is now: a checkpoint of every event recorded so far.",
    ),
    "confirm": (
        "consent_ledger.cli.consent:confirm",
        "Record that a person confirmed a pending opt-in (double opt-in).",
    ),
    "demo": (
        "consent_ledger.cli.demo:demo",
        "Build a demo ledger and print the status and history of the people in it.",
    ),
    "dossier": (
        "consent_ledger.cli.dossier:dossier",
        "Write a person's consent dossier: one self-contained HTML file that prints well.",
    ),
    "export": (
        "consent_ledger.cli.export:export",
        "Export events, filtered, as JSON Lines (whole events) or CSV (one row per event).",
    ),
    "history": (
        "consent_ledger.cli.reading:history",
        "Show every event of a person's consent record, oldest first.",
    ),
    "ingest": (
        "consent_ledger.cli.ingest:ingest",
        "Take in what messaging platforms report: opt-outs, marketing stops, ...",
    ),
    "init": ("consent_ledger.cli.ledger:init", "Create a new ledger and its key material."),
    "marketing-preference": (
        "consent_ledger.cli.consent:marketing_preference",
        "Record a marketing stop or resume the person made on WhatsApp itself.",
    ),
    "notice": (
        "consent_ledger.cli.notices:notice",
        "Publish and read opt-in notices (versioned; a version is never edited).",
    ),
    "opt-in": (
        "consent_ledger.cli.consent:opt_in",
        "Record that a person agreed to messages of some categories.",
    ),
    "opt-out": (
        "consent_ledger.cli.consent:opt_out",
        "Record that a person withdrew consent. Never refused.",
    ),
    "projections": (
        "consent_ledger.cli.projections:projections",
        "Inspect, catch up, rebuild and follow the views (no master key needed).",
    ),
    "receipt": (
        "consent_ledger.cli.receipts:receipt",
        "Write a consent receipt for each of a person's opt-ins, in the Kantara v1.1 shape.",
    ),
    "send": (
        "consent_ledger.cli.sends:send",
        "Record the messages sent to people, each with the decision it rested on.",
    ),
    "status": (
        "consent_ledger.cli.reading:status",
        "Show a person's consent per channel and category: granted, withdrawn, expired, pending.",
    ),
    "template": (
        "consent_ledger.cli.templates:template",
        "Message templates and the WhatsApp category each is in, over time.",
    ),
    "verify": (
        "consent_ledger.cli.evidence:verify",
        "Prove a ledger's log, or a bundle exported from one, is exactly as it was signed.",
    ),
}
"""Every command: where it is defined, and its summary (a test keeps the two in step)."""

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


def _validation_errors() -> tuple[type[ValidationError], ...]:
    """The validation error class of pydantic, if it is loaded (else nothing to catch).

    A command that never loaded pydantic cannot have raised its error, and ``--help``
    should not load it to find out.
    """
    pydantic_core = sys.modules.get("pydantic_core")
    return () if pydantic_core is None else (pydantic_core.ValidationError,)


class LedgerGroup(click.Group):
    """Loads commands when they run; turns the library's errors into one ``Error: ...`` line.

    Follows click's lazily loading group (``lazy_commands`` maps a name to "module:attribute"
    and a summary), and lists the summaries in ``--help`` without importing a module.
    """

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        """A group with ``lazy_commands`` beside the commands added to it."""
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, in order."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, its module imported now if it was not yet."""
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy_commands:
            return command
        module_name, attribute = self.lazy_commands[cmd_name][0].split(":")
        loaded = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(loaded, click.Command):
            msg = f"{module_name}:{attribute} is not a click command"
            raise TypeError(msg)
        return loaded

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands as click does, each summary from the table, not its module."""
        listed = [(name, self._listed(ctx, name)) for name in self.list_commands(ctx)]
        shown = [(name, command) for name, command in listed if not command.hidden]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)  # as click's
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in shown])

    def _listed(self, ctx: click.Context, name: str) -> click.Command:
        """The command if it is loaded, else a stand-in holding its summary as its help."""
        command = super().get_command(ctx, name)
        return command or click.Command(name, help=self.lazy_commands[name][1])

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
        except _validation_errors() as e:
            raise click.ClickException(describe(e)) from e
        except KeyboardInterrupt:
            # What a shell reports for SIGINT (128 + 2); every write is one transaction,
            # so an interrupted command has written whole events or none.
            click.echo("Interrupted", err=True)
            ctx.exit(INTERRUPTED)


@click.group(cls=LedgerGroup, lazy_commands=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="consent-ledger")
@ledger_options
@business_option
def main(**_: object) -> None:
    """An append-only, provable ledger of consent for business messaging.

    Record opt-ins, opt-outs and category changes for WhatsApp, SMS and e-mail; ask what a
    person's consent is now or was at any moment; read the full history an auditor asks for.
    Personal data is encrypted per person with keys kept outside the database.

    --db, --key-file and --business may come before the command or after it; given in
    both places, the one after the command wins.

    \b
    Example:
        consent-ledger --db ledger.db --business acme status "+44 7700 900123"
    """
    # Nothing to do here: each option's callback keeps what was typed for the command.
