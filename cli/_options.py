"""Options and parameter types shared by the commands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from consent_ledger.model.identifiers import Identifier
from consent_ledger.model.taxonomy import Channel, LegalBasis, Method

if TYPE_CHECKING:
    from consent_ledger import ConsentLedger

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DB = "consent-ledger.db"
DB_ENV = "CONSENT_LEDGER_DB"
KEY_FILE_ENV = "CONSENT_LEDGER_KEY_FILE"
BUSINESS_ENV = "CONSENT_LEDGER_BUSINESS"


class TimeType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.3
    """An ISO 8601 date or time; without a zone it is read as UTC."""

    name = "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        """Parse the value, or fail with a usage error."""
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 time (e.g. 2026-11-24, 2026-11-24T10:30:00Z)",
                param,
                ctx,
            )
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        try:  # the ledger keeps times in UTC: the moment must exist there too
            parsed.astimezone(UTC)
        except OverflowError:
            self.fail(
                f"{value!r} is out of range: in UTC it falls outside years 1 to 9999", param, ctx
            )
        return parsed


TIME = TimeType()


def split_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """Names given as repeated options and/or comma-separated lists, in order."""
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def given_before_command(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An option's value, taken from before the command when it was not given after it.

    ``--db``, ``--key-file`` and ``--business`` are options of the ``consent-ledger`` group
    and of each command, with this callback on both. A value typed on the command line is
    kept in ``ctx.meta``, which a command's context shares with its group's; an option left
    to its environment variable or default takes the kept value instead. So the value
    after the command wins, then the one before it, then the environment, then the default.
    """
    key = f"{__name__}.{param.name}"
    if ctx.get_parameter_source(str(param.name)) is click.ParameterSource.COMMANDLINE:
        ctx.meta[key] = value
        return value
    if key in ctx.meta:
        # The type again: a command's own option may differ (demo's --db is a Path).
        return param.type_cast_value(ctx, ctx.meta[key])
    return value


def ledger_options(command: F) -> F:
    """``--db`` and ``--key-file``: which ledger, and where its master key is."""
    command = click.option(
        "--key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=KEY_FILE_ENV,
        callback=given_before_command,
        help=f"The ledger's master key file [env: {KEY_FILE_ENV}; default: the .key file "
        "beside an SQLite ledger].",
    )(command)
    return click.option(
        "--db",
        default=DEFAULT_DB,
        envvar=DB_ENV,
        show_default=True,
        callback=given_before_command,
        help=f"The ledger: an SQLite file path or a postgresql:// URL [env: {DB_ENV}].",
    )(command)


def open_ledger(db: str, key_file: Path | None) -> ConsentLedger:
    """Open the ledger for the rest of this invocation; it closes when the command ends."""
    # Imported here: the ledger (event store, services) is not what --help needs.
    from consent_ledger import ConsentLedger  # noqa: PLC0415

    ctx = click.get_current_context()
    return ctx.with_resource(ConsentLedger.open(db, key_file=key_file))


def business_option(command: F) -> F:
    """``--business``: whose consent this is; defaults to the ledger's default business."""
    return click.option(
        "--business",
        "business_id",
        envvar=BUSINESS_ENV,
        callback=given_before_command,
        help=f"The business [env: {BUSINESS_ENV}; default: the one named at init].",
    )(command)


def resolve_business(ledger: ConsentLedger, business_id: str | None) -> str:
    """The business named, or the ledger's default business."""
    business_id = business_id or ledger.default_business
    if business_id is None:
        msg = "no --business given, and this ledger has no default business"
        raise click.UsageError(msg)
    return business_id


def require_business(ledger: ConsentLedger, business_id: str) -> None:
    """Refuse a business the ledger does not hold: a typo is an error, not an empty answer.

    The default business needs no look-up (it was registered with the ledger, and nothing
    is ever deleted), which keeps a single check from loading the catalogue.

    Raises:
        BusinessNotFoundError: no business is registered under ``business_id``.
    """
    if business_id != ledger.default_business:
        ledger.get_business(business_id)


def format_option(*choices: str) -> Callable[[F], F]:
    """``--format``: how a reading command writes its data to stdout."""
    names = choices or ("table", "json", "csv")

    def decorate(command: F) -> F:
        return click.option(
            "--format",
            "output_format",
            type=click.Choice(names),
            default=names[0],
            show_default=True,
            help="Output format (data only on stdout).",
        )(command)

    return decorate


def identifier_argument(command: F) -> F:
    """The person: a phone number in any common form, or wa:, bsuid:, email: identifiers."""
    command = click.option(
        "--region",
        metavar="CC",
        help="Country (ISO 3166, e.g. GB) for phone numbers written in national form.",
    )(command)
    return click.argument("identifier")(command)


def parse_identifier(text: str, region: str | None) -> Identifier:
    """The identifier the user wrote, normalised."""
    return Identifier.parse(text, region)


def channel_option(command: F) -> F:
    """``--channel``, default whatsapp."""
    return click.option(
        "--channel",
        type=click.Choice([c.value for c in Channel]),
        default=Channel.WHATSAPP.value,
        show_default=True,
        help="The channel consent is about.",
    )(command)


def provenance_options_with(default_method: Method | None) -> Callable[[F], F]:
    """How, where, by whom and when a decision was made, and the evidence for it."""

    def decorate(command: F) -> F:
        return _provenance_options(command, default_method)

    return decorate


def _provenance_options(command: F, default_method: Method | None) -> F:
    options = [
        click.option(
            "--method",
            type=click.Choice([m.value for m in Method]),
            required=default_method is None,
            default=default_method.value if default_method else None,
            show_default=default_method is not None,
            help="How the decision reached the business.",
        ),
        click.option(
            "--collection-point",
            metavar="TEXT",
            help="Where: a form id or URL, a shop, a campaign, a phone line.",
        ),
        click.option(
            "--actor",
            default="subject",
            show_default=True,
            help="Who acted: 'subject', or e.g. 'operator:ada' for an operator on their behalf.",
        ),
        click.option(
            "--occurred-at",
            type=TIME,
            help="When the decision happened, if earlier than now (historical records).",
        ),
        click.option("--sender", metavar="ID", help="Narrow to one sender (business number)."),
        click.option("--evidence", metavar="TEXT", help="A note that backs the decision."),
        click.option(
            "--evidence-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="A file that backs the decision (signed form, screenshot); up to 1 MiB.",
        ),
        click.option("--ip", metavar="ADDRESS", help="The IP address the decision came from."),
        click.option("--user-agent", metavar="TEXT", help="The browser that sent the decision."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


provenance_options = provenance_options_with(None)


def grant_options(command: F) -> F:
    """Expiry, legal basis and jurisdiction of a grant."""
    options = [
        click.option("--expires-at", type=TIME, help="When the grant lapses, if it does."),
        click.option(
            "--legal-basis",
            type=click.Choice([b.value for b in LegalBasis]),
            default=LegalBasis.CONSENT.value,
            show_default=True,
            help="The lawful ground of the grant.",
        ),
        click.option(
            "--jurisdiction", metavar="CC", help="The law it was given under (e.g. IT, US-CA)."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
