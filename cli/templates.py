"""``template``: the WhatsApp category each message template is in (``check --template``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from consent_ledger.cli._options import (
    TIME,
    business_option,
    ledger_options,
    open_ledger,
    resolve_business,
)
from consent_ledger.cli._output import iso, write_table

from consent_ledger.model.taxonomy import TemplateCategory

if TYPE_CHECKING:
    from pathlib import Path

    from consent_ledger.cli._options import F

    from consent_ledger.model.template import Template


@click.group()
def template() -> None:
    """Message templates and the WhatsApp category each is in, over time.

    WhatsApp decides a template's category and may change it; ``check --template`` judges a
    send by the category in force at the send. Ingested template_category_update webhooks
    record WhatsApp's changes; ``template set`` records what you know.
    """


def _template_options(command: F) -> F:
    for option in (
        click.option("--language", "-l", required=True, help="The template's language (en_US)."),
        click.argument("name"),
        business_option,
        ledger_options,
    ):
        command = option(command)
    return command


@template.command("set")
@_template_options
@click.option(
    "--category",
    required=True,
    type=click.Choice([t.value for t in TemplateCategory]),
    help="The category the template is in.",
)
@click.option("--from", "effective_at", type=TIME, help="In force from this moment [now].")
def set_category(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    name: str,
    language: str,
    category: str,
    effective_at: datetime | None,
) -> None:
    """Record the category a template is in (from now, or --from a moment).

    \b
    Example:
        consent-ledger template set order_shipped -l en_US --category UTILITY
    """
    ledger = open_ledger(db, key_file)
    business = resolve_business(ledger, business_id)
    changes = ledger.template_changes(business, name, language)
    overridden = _whatsapps_change(changes, category, effective_at or datetime.now(UTC))
    ledger.set_template_category(business, name, language, category, effective_at=effective_at)
    in_force = ledger.template_category(business, name, language)
    click.echo(f"{name} ({language}): {category} recorded; in force now: {in_force or '-'}")
    if overridden is not None:
        click.echo(
            f"Note: this overrides WhatsApp's change to {overridden.category} in force from "
            f"{iso(overridden.effective_at)} (ingested from a template_category_update): "
            "WhatsApp decides a template's category; check it in WhatsApp Manager",
            err=True,
        )


def _whatsapps_change(
    changes: list[Template.CategoryChanged], category: str, effective_at: datetime
) -> Template.CategoryChanged | None:
    """WhatsApp's change that a category set by hand from ``effective_at`` overrides, if any."""
    before = [c for c in changes if c.effective_at <= effective_at]
    latest = max(before, key=lambda c: c.effective_at, default=None)
    if latest is None or latest.source != "whatsapp" or latest.category == category:
        return None
    return latest


@template.command("show")
@_template_options
@click.option("--at", type=TIME, help="The category in force at this moment [now].")
def show(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    name: str,
    language: str,
    at: datetime | None,
) -> None:
    """Show a template's category in force, and every change of it.

    \b
    Example:
        consent-ledger template show order_shipped -l en_US --at 2026-11-01
    """
    ledger = open_ledger(db, key_file)
    business = resolve_business(ledger, business_id)
    in_force = ledger.template_category(business, name, language, at=at)
    click.echo(f"{name} ({language}): {in_force or 'no category recorded'}")
    # In the order they take effect (a change recorded late may take effect earlier).
    changes = sorted(
        ledger.template_changes(business, name, language), key=lambda c: c.effective_at
    )
    write_table(
        ("effective", "category", "previous", "source", "recorded"),
        [
            (
                iso(c.effective_at) or "-",
                str(c.category),
                str(c.previous or "-"),
                c.source,
                iso(c.timestamp) or "-",
            )
            for c in changes
        ],
        empty="(no changes recorded)",
    )
