"""``notice``: publish and read the versioned opt-in wording people agree to."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from consent_ledger.cli._inputs import TEXT_INPUT, TextInput
from consent_ledger.cli._options import (
    business_option,
    channel_option,
    format_option,
    ledger_options,
    open_ledger,
    resolve_business,
    split_names,
)
from consent_ledger.cli._output import write_notice, write_notices
from consent_ledger.cli._values import NOTICE

from consent_ledger import PublishNotice

if TYPE_CHECKING:
    from pathlib import Path

    from consent_ledger.model.commands import NoticeSelector


@click.group()
def notice() -> None:
    """Publish and read opt-in notices (versioned; a version is never edited)."""


@notice.command("publish")
@ledger_options
@business_option
@click.argument("notice_id")
@click.option("--language", required=True, help="BCP 47 language tag of the text (en, it, pt-BR).")
@channel_option
@click.option(
    "--category",
    "-c",
    "categories",
    multiple=True,
    required=True,
    help="A category the notice asks consent for (repeat, or comma-separate).",
)
@click.option(
    "--text-file",
    type=TEXT_INPUT,
    default="-",
    help="The full wording people see; '-' (default) reads stdin.",
)
@click.option("--policy-url", metavar="URL", help="The privacy policy the notice links to.")
def publish(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    notice_id: str,
    language: str,
    channel: str,
    categories: tuple[str, ...],
    text_file: TextInput,
    policy_url: str | None,
) -> None:
    """Publish the next version of a notice (the first publish creates it).

    The text must name the business, so people know who will message them.

    \b
    Example:
        consent-ledger notice publish whatsapp-optin --language en \\
            -c order-updates,offers --text-file optin-en.txt
    """
    if text_file.is_stdin and sys.stdin.isatty():
        msg = "give the notice text with --text-file FILE, or pipe it on stdin"
        raise click.UsageError(msg)
    text = text_file.read()
    ledger = open_ledger(db, key_file)
    version = ledger.publish_notice(
        PublishNotice(
            business_id=resolve_business(ledger, business_id),
            notice_id=notice_id,
            language=language,
            channel=channel,
            categories=split_names(categories),
            text=text,
            policy_url=policy_url,
        )
    )
    click.echo(f"Published notice {version.notice_id}@{version.version} {version.content_hash}")


@notice.command("show")
@ledger_options
@business_option
@click.argument("notice", type=NOTICE)
@format_option()
def show(
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    notice: NoticeSelector,
    output_format: str,
) -> None:
    """Show a notice version with its full text: ID@VERSION, or ID for the latest.

    \b
    Example:
        consent-ledger notice show whatsapp-optin@1
    """
    ledger = open_ledger(db, key_file)
    version = ledger.get_notice(resolve_business(ledger, business_id), *notice)
    write_notice(version, output_format)


@notice.command("list")
@ledger_options
@business_option
@click.option("--versions", "notice_id", metavar="ID", help="List every version of one notice.")
@format_option()
def list_notices(
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    notice_id: str | None,
    output_format: str,
) -> None:
    """List the business's notices (latest versions), or every version of one.

    \b
    Example:
        consent-ledger notice list --format csv
    """
    ledger = open_ledger(db, key_file)
    business_id = resolve_business(ledger, business_id)
    if notice_id is None:
        notices = ledger.list_notices(business_id)
    else:
        notices = ledger.list_notice_versions(business_id, notice_id)
    write_notices(notices, output_format)
