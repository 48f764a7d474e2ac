"""``opt-in``, ``opt-out``, ``change``, ``confirm``: record one person's consent decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from consent_ledger.cli._options import (
    business_option,
    channel_option,
    grant_options,
    identifier_argument,
    ledger_options,
    open_ledger,
    parse_identifier,
    provenance_options,
    provenance_options_with,
    resolve_business,
    split_names,
)
from consent_ledger.cli._values import NOTICE

from consent_ledger import (
    ChangeCategories,
    ConfirmOptIn,
    ConsentLedger,
    Evidence,
    OptIn,
    OptOut,
    Recorded,
    RecordPlatformPreference,
)
from consent_ledger.model.taxonomy import Method

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from consent_ledger.model.commands import ConsentCommand

CATEGORY_HELP = "A category (repeat, or comma-separate)."


def _evidence(
    text: str | None, file: Path | None, ip: str | None, user_agent: str | None
) -> Evidence | None:
    if file is not None:
        return Evidence.from_file(file, text=text, ip=ip, user_agent=user_agent)
    if text or ip or user_agent:
        return Evidence(text=text, ip=ip, user_agent=user_agent)
    return None


def _common(ledger: ConsentLedger, options: dict[str, Any]) -> dict[str, Any]:
    """The fields every consent command takes, from the shared options."""
    common = {
        "business_id": resolve_business(ledger, options.pop("business_id")),
        "identifier": parse_identifier(options.pop("identifier"), options.pop("region")),
        "sender": options.pop("sender"),
        "method": options.pop("method"),
        "collection_point": options.pop("collection_point"),
        "actor": options.pop("actor"),
        "evidence": _evidence(
            options.pop("evidence"),
            options.pop("evidence_file"),
            options.pop("ip"),
            options.pop("user_agent"),
        ),
    }
    occurred_at: datetime | None = options.pop("occurred_at")
    if occurred_at is not None:
        common["occurred_at"] = occurred_at
    return common


def _run(
    options: dict[str, Any],
    build: Callable[[dict[str, Any]], ConsentCommand],
    execute: Callable[[ConsentLedger, Any], Recorded],
) -> None:
    ledger = open_ledger(options.pop("db"), options.pop("key_file"))
    common = _common(ledger, options)
    command = build({**common, **options})
    recorded = execute(ledger, command)
    created = " (new consent record)" if recorded.new_subject else ""
    click.echo(
        f"Recorded {recorded.event_type} #{recorded.version} for {command.identifier} "
        f"(subject {recorded.subject_id}){created}"
    )
    if recorded.left_out:
        click.echo(
            f"Note: the person's data key is gone (their personal data was erased): "
            f"recorded without its {' and '.join(recorded.left_out)}",
            err=True,
        )


@click.command("opt-in")
@ledger_options
@business_option
@identifier_argument
@channel_option
@click.option("--category", "-c", "categories", multiple=True, required=True, help=CATEGORY_HELP)
@click.option("--notice", required=True, type=NOTICE, help="The notice the person saw.")
@click.option(
    "--awaiting-confirmation",
    is_flag=True,
    help="Double opt-in: the grant is pending until `consent-ledger confirm`.",
)
@grant_options
@provenance_options
def opt_in(**options: Any) -> None:
    """Record that a person agreed to messages of some categories.

    The notice must be one the business published for this channel, covering every
    category granted. A repeated opt-in is recorded too: it is new evidence.

    \b
    Example:
        consent-ledger opt-in "+44 7700 900123" -c offers,order-updates \\
            --notice whatsapp-optin@1 --method web-form --collection-point checkout
    """
    options["categories"] = split_names(options["categories"])
    _run(options, lambda fields: OptIn(**fields), ConsentLedger.opt_in)


@click.command("confirm")
@ledger_options
@business_option
@identifier_argument
@channel_option
@click.option("--category", "-c", "categories", multiple=True, required=True, help=CATEGORY_HELP)
@provenance_options
def confirm(**options: Any) -> None:
    """Record that a person confirmed a pending opt-in (double opt-in).

    \b
    Example:
        consent-ledger confirm "+44 7700 900123" -c offers --method sms-keyword
    """
    options["categories"] = split_names(options["categories"])
    _run(options, lambda fields: ConfirmOptIn(**fields), ConsentLedger.confirm_opt_in)


@click.command("opt-out")
@ledger_options
@business_option
@identifier_argument
@channel_option
@click.option("--all-channels", is_flag=True, help="Withdraw on every channel.")
@click.option("--category", "-c", "categories", multiple=True, help=CATEGORY_HELP)
@click.option("--all", "all_categories", is_flag=True, help="Withdraw every category.")
@click.option("--reason", metavar="TEXT", help="What the person said, or why.")
@provenance_options
def opt_out(**options: Any) -> None:
    """Record that a person withdrew consent. Never refused.

    Give the categories withdrawn, or --all; the channel, or --all-channels. A person
    the ledger has not seen gets a consent record that holds the opt-out.

    \b
    Example:
        consent-ledger opt-out "+44 7700 900123" --all --method whatsapp-thread \\
            --reason "replied STOP"
    """
    categories = split_names(options.pop("categories"))
    every = options.pop("all_categories")
    if every == bool(categories):
        msg = (
            "give the categories withdrawn (--category) or --all, not both"
            if every
            else "say what is withdrawn: --category CAT (repeatable) or --all"
        )
        raise click.UsageError(msg)
    options["categories"] = categories or None
    if options.pop("all_channels"):
        options["channel"] = None
    _run(options, lambda fields: OptOut(**fields), ConsentLedger.opt_out)


@click.command("change")
@ledger_options
@business_option
@identifier_argument
@channel_option
@click.option("--grant", multiple=True, metavar="CATEGORY", help="A category granted (repeatable).")
@click.option(
    "--withdraw", multiple=True, metavar="CATEGORY", help="A category withdrawn (repeatable)."
)
@click.option("--notice", type=NOTICE, help="The notice behind the grants.")
@grant_options
@provenance_options
def change(**options: Any) -> None:
    """Record one decision that grants some categories and withdraws others.

    \b
    Example:
        consent-ledger change "+44 7700 900123" --grant recommendations \\
            --withdraw offers --notice whatsapp-optin@2 --method web-form
    """
    options["grant"] = split_names(options["grant"])
    options["withdraw"] = split_names(options["withdraw"])
    _run(options, lambda fields: ChangeCategories(**fields), ConsentLedger.change_categories)


@click.command("marketing-preference")
@ledger_options
@business_option
@identifier_argument
@click.option(
    "--stop/--resume", "stopped", default=None, help="Whether the person stopped or resumed it."
)
@provenance_options_with(Method.PLATFORM)
def marketing_preference(**options: Any) -> None:
    """Record a marketing stop or resume the person made on WhatsApp itself.

    WhatsApp lets people stop promotions from a business number; until they resume,
    MARKETING templates from that number fail (error 131050). Give the number with
    --sender; without it the stop covers every sender of the business.

    \b
    Example:
        consent-ledger marketing-preference "+44 7700 900123" --stop --sender 15550001111
    """
    if options["stopped"] is None:
        msg = "say whether the person stopped (--stop) or resumed (--resume) marketing"
        raise click.UsageError(msg)
    _run(
        options,
        lambda fields: RecordPlatformPreference(**fields),
        ConsentLedger.record_platform_preference,
    )
