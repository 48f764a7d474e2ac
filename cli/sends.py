"""``send``: the record of every message sent, each with the decision it rested on."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click
from consent_ledger.cli._options import (
    TIME,
    business_option,
    identifier_argument,
    ledger_options,
    open_ledger,
    parse_identifier,
    require_business,
    resolve_business,
)
from consent_ledger.cli.sending import DENIED_EXIT, send_options

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from consent_ledger import ConsentLedger
    from consent_ledger.application.sends import SendOutcome


@click.group()
def send() -> None:
    """Record the messages sent to people, each with the decision it rested on."""


@send.command("record")
@ledger_options
@business_option
@identifier_argument
@send_options(service_window=False)
@click.option("--message-id", required=True, help="The message's id (a wamid): kept as a hash.")
@click.option("--template", metavar="NAME", help="The template sent (its category in force).")
@click.option("--template-language", metavar="LANG", help="The template's language (en_US).")
@click.option("--sent-at", type=TIME, help="When it was sent [now].")
@click.option(
    "--only-if-allowed",
    is_flag=True,
    help="Record it only if it is allowed now (a send about to be made); exit 3 if denied.",
)
def record(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    identifier: str,
    region: str | None,
    only_if_allowed: bool,
    sent_at: datetime | None,
    **send: Any,
) -> None:
    """Record that a message was sent to a person, with the decision it rests on.

    The send is judged by every rule of the policy (consent, quiet hours, frequency limits
    over the sends already recorded) and recorded with that decision, once per message id,
    in the person's record: the evidence of which consent each message relied on. A send
    that was not allowed is still recorded (it happened) and said so on stderr; with
    --only-if-allowed it is recorded only if allowed, in the same transaction as the
    decision, so that senders racing for the last place under a limit cannot both take it.

    \b
    Examples:
        consent-ledger send record "+1 305 555 0123" -c offers --message-id wamid.HBgL... \\
            --template spring_sale --template-language en_US --policy us-fl-ftsa
    """
    from consent_ledger.model.commands import RecordSend  # noqa: PLC0415 (pydantic)

    ledger = open_ledger(db, key_file)
    business = resolve_business(ledger, business_id)
    require_business(ledger, business)
    command = RecordSend(
        business_id=business,
        identifier=parse_identifier(identifier, region),
        message_id=send.pop("message_id"),
        **{k: v for k, v in send.items() if v is not None},
        **({"occurred_at": sent_at} if sent_at is not None else {}),
    )
    outcome = ledger.record_send(command, only_if_allowed=only_if_allowed)
    write_outcome(str(command.identifier), outcome)


def write_outcome(identifier: str, outcome: SendOutcome) -> None:
    """Say what recording a send did; exit 3 if it was refused as not allowed."""
    if outcome.duplicate:
        earlier = outcome.earlier
        verdict = "" if earlier is None else f": {_verdict(earlier.allowed, earlier.reason)}"
        event = "" if earlier is None else f" as #{earlier.originator_version}"
        click.echo(f"Already recorded{event} for {identifier}{verdict}; nothing recorded now")
        return
    decision = outcome.decision
    assert decision is not None  # noqa: S101 (only a duplicate has none)
    verdict = _verdict(decision.allowed, str(decision.reason))
    rests_on = f", rests on #{decision.event_version}" if decision.event_version else ""
    recorded = outcome.recorded
    if recorded is None:
        click.echo(f"Not recorded: {verdict} ({decision.detail})")
        sys.exit(DENIED_EXIT)
    click.echo(
        f"Recorded MessageSent #{recorded.version} for {identifier} (subject "
        f"{recorded.subject_id}): {verdict}{rests_on} under {decision.policy}"
    )
    if not decision.allowed:
        click.echo(f"Warning: this send was not allowed: {decision.detail}", err=True)


def _verdict(allowed: bool, reason: str) -> str:  # noqa: FBT001 (a verdict is a flag)
    return f"{'allowed' if allowed else 'NOT allowed'} ({reason})"


def check_and_record(  # noqa: PLR0913 (what check was given)
    ledger: ConsentLedger,
    identifier: str | None,
    region: str | None,
    request: dict[str, Any],
    *,
    message_id: str,
    template: tuple[str | None, str | None],
    input_given: bool,
) -> None:
    """``check --record``: decide and record the send together, only if it is allowed."""
    from consent_ledger.model.commands import RecordSend  # noqa: PLC0415 (pydantic)

    if input_given or identifier is None:
        msg = "--record records one send: give one IDENTIFIER, not --input"
        raise click.UsageError(msg)
    if request.pop("in_service_window") is not None:
        msg = "--record works the service window out from the record: drop --in-service-window"
        raise click.UsageError(msg)
    at = request.pop("at")
    name, language = template
    command = RecordSend(
        identifier=parse_identifier(identifier, region),
        message_id=message_id,
        template_name=name,
        template_language=language,
        **{k: v for k, v in request.items() if v is not None},
        **({"occurred_at": at} if at is not None else {}),
    )
    write_outcome(str(command.identifier), ledger.record_send(command, only_if_allowed=True))
