"""``check`` and ``audience``: may this message be sent, and to whom."""

from __future__ import annotations

import contextlib
import csv
import functools
import sys
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import click
import orjson
from consent_ledger.cli._files import written_text
from consent_ledger.cli._inputs import TEXT_INPUT, TextInput, input_rows
from consent_ledger.cli._options import (
    TIME,
    F,
    business_option,
    channel_option,
    format_option,
    ledger_options,
    open_ledger,
    require_business,
    resolve_business,
)
from consent_ledger.cli._output import iso, write_csv, write_json
from consent_ledger.cli._values import POLICY, one_category_option
from consent_ledger.cli._views import caught_up, view_db_option
from consent_ledger.projections import ConsentStatusView

from consent_ledger import ConsentLedgerError, Identifier
from consent_ledger.model.identifiers import address, as_identifier
from consent_ledger.model.taxonomy import TemplateCategory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from consent_ledger import ConsentLedger
    from consent_ledger.sending.eligibility import Decision, RecipientPage

DENIED_EXIT = 3
SHOWN_PROBLEMS = 5
DECISION_COLUMNS = (
    "identifier",
    "allowed",
    "reason",
    "detail",
    "policy",
    "business_id",
    "channel",
    "category",
    "sender",
    "template_category",
    "at",
    "subject_id",
    "event_version",
    "event_type",
)
RECIPIENT_COLUMNS = (
    "identifier",
    "identifier_kind",
    "subject_id",
    "channel",
    "category",
    "sender",
    "since",
    "expires_at",
    "notice",
    "event_version",
    "event_type",
    "policy",
)


def decision_json(identifier: str, decision: Decision) -> dict[str, Any]:
    """A decision, with its stable JSON keys."""
    request = decision.request
    return {
        "identifier": identifier,
        "allowed": decision.allowed,
        "reason": str(decision.reason),
        "detail": decision.detail,
        "policy": decision.policy,
        "business_id": request.business_id,
        "channel": str(request.channel),
        "category": request.category,
        "sender": request.sender,
        "template_category": str(request.template_category),
        "at": iso(request.at),
        "subject_id": str(decision.subject_id) if decision.subject_id else None,
        "event_version": decision.event_version,
        "event_type": decision.event_type,
    }


def send_options(*, service_window: bool = True) -> Callable[[F], F]:
    """What is being sent: category, channel, sender, template category, policy."""
    options = [
        one_category_option("The message's category (required unless each input row names one)."),
        channel_option,
        click.option("--sender", metavar="ID", help="The sending number (WhatsApp phone id)."),
        click.option(
            "--template-category",
            type=click.Choice([t.value for t in TemplateCategory]),
            help="The template's WhatsApp category [default: the category's own].",
        ),
        click.option(
            "--policy",
            type=POLICY,
            help="The rules to apply: a preset, or a policy file (.json) [default: "
            "whatsapp-2025 on WhatsApp, else consent-only].",
        ),
    ]
    if service_window:
        options.append(
            click.option(
                "--in-service-window",
                is_flag=True,
                default=None,
                help="A customer service window is open [default: worked out from the "
                "messages the ledger ingested from the person in the last 24 hours].",
            )
        )

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


_REQUEST_FIELDS = (
    "category",
    "channel",
    "sender",
    "template_category",
    "policy",
    "in_service_window",
    "at",
)


def _as_request(command: F) -> F:
    """Hand ``check`` the options it passes straight to ``ConsentLedger.check``, as ``request``.

    ``request`` maps each of ``_REQUEST_FIELDS`` to its option's value; the command adds the
    business and the template, which it works out from other options.
    """

    @functools.wraps(command)
    def with_request(**kwargs: Any) -> Any:
        request = {name: kwargs.pop(name) for name in _REQUEST_FIELDS}
        return command(request=request, **kwargs)

    return cast("F", with_request)


@click.command()
@ledger_options
@view_db_option
@business_option
@click.argument("identifier", required=False)
@click.option("--region", metavar="CC", help="Country for numbers in national form.")
@send_options()
@click.option(
    "--template",
    metavar="NAME",
    help="The template to send: its category in force (see template set) decides.",
)
@click.option("--template-language", metavar="LANG", help="The template's language (e.g. en_US).")
@click.option("--at", type=TIME, help="Decide as of this moment (from the record itself).")
@click.option(
    "--input",
    "input_file",
    type=TEXT_INPUT,
    help="Check many recipients: a CSV (header row) or JSON Lines file, '-' for stdin; "
    "columns identifier, and optionally category, channel, sender, template_category.",
)
@click.option(
    "--record",
    "message_id",
    metavar="MESSAGE_ID",
    help="Record the send (by its message id) if it is allowed, in the same transaction as "
    "the decision: senders racing under a frequency limit cannot both take the last place.",
)
@format_option("table", "json", "csv", "jsonl")
@_as_request
def check(  # noqa: PLR0913 (one parameter per option; the request's come packed)
    *,
    db: str,
    key_file: Path | None,
    view_db: str | None,
    business_id: str | None,
    identifier: str | None,
    region: str | None,
    request: dict[str, Any],
    template: str | None,
    template_language: str | None,
    input_file: TextInput | None,
    message_id: str | None,
    output_format: str,
) -> None:
    """May a message of a category be sent to this person? Exit 0 if allowed, 3 if denied.

    The decision names its reason (consented, service-window; no-consent, withdrawn,
    expired, pending-confirmation, platform-marketing-stop, country-not-allowed,
    template-category-mismatch) and the event it rests on. Current consent is read from the
    consent-status view, caught up first; --at folds the person's record as of that moment.

    With --input, every row gets a decision (exit 0), and rows that cannot be read are
    reported on stderr by line (exit 1).

    \b
    Examples:
        consent-ledger check "+44 7700 900123" -c offers --sender 15550001111
        consent-ledger check --input recipients.csv -c order-updates --format csv
        consent-ledger check "+44 7700 900123" -c order-updates --template order_shipped \\
            --template-language en_US
    """
    _check_usage(identifier, input_file, template, template_language)
    rows = input_file.read() if input_file is not None else None
    ledger = open_ledger(db, key_file)
    business_id = resolve_business(ledger, business_id)
    require_business(ledger, business_id)  # a typo is an error, not everyone denied
    if message_id is not None:  # check --record
        given = request | {"business_id": business_id}
        pair = (template, template_language)
        _record(ledger, identifier, region, given, message_id=message_id, template=pair, rows=rows)
        return
    view = caught_up(ledger.event_log, view_db, db, ConsentStatusView)
    defaults = request | {
        "business_id": business_id,
        "template": (template, template_language) if template and template_language else None,
    }
    decide = functools.partial(ledger.check, source=view)
    if rows is not None:
        _check_many(decide, rows, region, defaults, output_format)
        return
    assert identifier is not None  # noqa: S101 (checked above)
    _check_one(decide, identifier, region, defaults, output_format)


def _record(  # noqa: PLR0913 (what check was given)
    ledger: ConsentLedger,
    identifier: str | None,
    region: str | None,
    request: dict[str, Any],
    *,
    message_id: str,
    template: tuple[str | None, str | None],
    rows: str | None,
) -> None:
    from consent_ledger.cli.sends import check_and_record  # noqa: PLC0415 (only --record)

    check_and_record(ledger, identifier, region, request, message_id=message_id,
                     template=template, input_given=rows is not None)  # fmt: skip


def _check_usage(
    identifier: str | None,
    input_file: TextInput | None,
    template: str | None,
    template_language: str | None,
) -> None:
    """Refuse what ``check`` cannot be asked: one recipient and a file, half a template.

    Raises:
        click.UsageError: what is wrong with the command line.
    """
    if (identifier is None) == (input_file is None):
        msg = "give one IDENTIFIER, or --input FILE for many"
        raise click.UsageError(msg)
    if (template is None) != (template_language is None):
        msg = "give a template's name (--template) and language (--template-language) together"
        raise click.UsageError(msg)


def _check_one(
    decide: Callable[..., Decision],
    identifier: str,
    region: str | None,
    defaults: dict[str, Any],
    output_format: str,
) -> None:
    """Decide for one recipient and write the decision; exit with status 3 if denied."""
    if defaults["category"] is None:
        msg = "give the message's category (--category)"
        raise click.UsageError(msg)
    parsed, decision = _decided(decide, identifier, region, defaults)
    _write_one(str(parsed), decision, output_format)
    if not decision.allowed:
        sys.exit(DENIED_EXIT)


def _decided(
    decide: Callable[..., Decision], text: str, region: str | None, defaults: dict[str, Any]
) -> tuple[Identifier, Decision]:
    """The recipient as the user wrote it, read, and the decision for them.

    A number in E.164 form is first looked up as it is (:func:`as_identifier`), without
    phonenumbers, whose metadata is a large part of a check's start: every number the
    ledger holds is in that form. Only if that finds nobody is the text read in full, so
    an impossible number is still an error and another spelling of a number is still found.
    """
    if region is None:
        quick = as_identifier(text)
        decision = decide(quick, **defaults)
        if decision.subject_id is not None:
            return quick, decision
        parsed = Identifier.parse(text)
        if parsed == quick:
            return parsed, decision
    else:
        parsed = Identifier.parse(text, region)
    return parsed, decide(parsed, **defaults)


def _write_one(identifier: str, decision: Decision, output_format: str) -> None:
    row = decision_json(identifier, decision)
    if output_format in ("json", "jsonl"):
        write_json(row) if output_format == "json" else click.echo(orjson.dumps(row).decode())
    elif output_format == "csv":
        write_csv(DECISION_COLUMNS, [row])
    else:
        verdict = "ALLOWED" if decision.allowed else "DENIED"
        event = f"#{decision.event_version} {decision.event_type}" if decision.event_type else "-"
        click.echo(f"{verdict}: {decision.reason} ({decision.detail})")
        click.echo(f"recipient {identifier}; subject {row['subject_id'] or '-'}; event {event}")
        click.echo(
            f"policy {decision.policy}; {row['channel']} {row['category']} as "
            f"{row['template_category']}; sender {row['sender'] or 'any'}; at {row['at']}"
        )


def _check_many(
    decide: Callable[..., Decision],
    text: str,
    region: str | None,
    defaults: dict[str, Any],
    output_format: str,
) -> None:
    """Decide for each row of ``text``; rows that cannot be read fail at the end."""
    problems: list[str] = []
    output_format = "csv" if output_format == "table" else output_format
    writer = csv.DictWriter(sys.stdout, fieldnames=["line", *DECISION_COLUMNS], lineterminator="\n")
    header_due = output_format == "csv"
    template_category = None  # the template's category, once the ledger has looked it up
    for line, row in input_rows(text, problems, required="identifier"):
        try:
            fields = _request_fields(row, defaults)
            if template_category is not None and not row.get("template_category"):
                fields |= {"template": None, "template_category": template_category}
            parsed = Identifier.parse(str(row["identifier"]), row.get("region") or region)
            decision = decide(parsed, **fields)
        except ConsentLedgerError as e:
            problems.append(f"line {line}: {e}")
            continue
        if fields["template"] is not None:  # the same for every row: look it up once
            template_category = decision.request.template_category
        out = {"line": line, **decision_json(str(parsed), decision)}
        if header_due:
            writer.writeheader()
            header_due = False
        if output_format == "csv":
            writer.writerow({k: "" if v is None else v for k, v in out.items()})
        else:
            click.echo(orjson.dumps(out).decode())
    if problems:
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        if len(problems) > SHOWN_PROBLEMS:
            shown += f"; and {len(problems) - SHOWN_PROBLEMS} more"
        msg = f"{len(problems)} rows could not be checked: {shown}"
        raise click.ClickException(msg)


def _request_fields(row: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    fields = dict(defaults)
    for name in ("category", "channel", "sender", "template_category", "region"):
        value = row.get(name)
        if value is not None and not isinstance(value, str):  # a JSON number, list, ...
            msg = f"{name} is not text: {orjson.dumps(value).decode()[:40]}"
            raise ConsentLedgerError(msg)
        if value and name != "region":
            fields[name] = value
    if not row.get("identifier"):
        msg = "no identifier"
        raise ConsentLedgerError(msg)
    if fields["category"] is None:
        msg = "no category (give a category column or --category)"
        raise ConsentLedgerError(msg)
    return fields


@click.command()
@ledger_options
@view_db_option
@business_option
@send_options(service_window=False)
@format_option("csv", "jsonl")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default="-",
    show_default=True,
    help="Where to write ('-': stdout); a file holds personal data: mode 0600, written whole.",
)
def audience(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    view_db: str | None,
    business_id: str | None,
    category: str | None,
    channel: str,
    sender: str | None,
    template_category: str | None,
    policy: str | None,
    output_format: str,
    output: Path,
) -> None:
    """Stream everyone a message of a category may be sent to now, identifiers opened.

    Reads the consent-status view (caught up first) and applies the policy to each person;
    the output is what a sending service needs to address each message.

    \b
    Example:
        consent-ledger audience -c offers --sender 15550001111 --output offers.csv
    """
    if category is None:
        msg = "give the message's category (--category)"
        raise click.UsageError(msg)
    ledger = open_ledger(db, key_file)
    business_id = resolve_business(ledger, business_id)
    require_business(ledger, business_id)  # a typo is an error, not an empty audience
    view = caught_up(ledger.event_log, view_db, db, ConsentStatusView)
    candidates = view.audience_pages(business_id, channel, category, sender)
    # Closed (with its cursor) before the view's database, as a context closes what it
    # holds last in, first out: after a failure, the traceback would keep it open past
    # the database's close, to be finalised on a closed connection.
    click.get_current_context().with_resource(contextlib.closing(candidates))
    recipients = ledger.audience_pages(
        candidates,
        business_id=business_id,
        category=category,
        channel=channel,
        sender=sender,
        template_category=template_category,
        policy=policy,
    )
    with written_text(output) as out:
        write_recipients(
            recipients, out, output_format, channel=channel, category=category, sender=sender
        )


def write_recipients(  # noqa: PLR0913 (the rows carry the request's facts)
    pages: Iterable[RecipientPage],
    output: TextIO,
    output_format: str,
    *,
    channel: str,
    category: str,
    sender: str | None,
) -> int:
    """Write each recipient as a row of ``RECIPIENT_COLUMNS`` (csv with a header, or jsonl).

    A page at a time, column by column. Returns how many were written.
    """
    writer = csv.writer(output, lineterminator="\n")
    # The header goes with the first page: an audience that fails to open prints nothing.
    header_due = output_format == "csv"
    count = 0
    for page in pages:
        if header_due:
            writer.writerow(RECIPIENT_COLUMNS)
            header_due = False
        c = page.candidates
        rows = zip(
            map(address, c.identifier_kind, page.identifiers),
            c.identifier_kind,
            c.subject_id,
            repeat(channel),
            repeat(category),
            repeat(sender),
            c.since,
            c.expires_at,
            c.notice,
            c.event_version,
            c.event_type,
            repeat(page.policy),
        )
        if output_format == "csv":
            writer.writerows(rows)
        else:
            output.writelines(
                orjson.dumps(dict(zip(RECIPIENT_COLUMNS, row, strict=True))).decode() + "\n"
                for row in rows
            )
        count += len(page.identifiers)
    if header_due:  # nobody: the header alone
        writer.writerow(RECIPIENT_COLUMNS)
    return count
