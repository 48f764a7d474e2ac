"""``category``: the categories people consent to, a business's own beside the built-in ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from consent_ledger.cli._options import (
    business_option,
    format_option,
    ledger_options,
    open_ledger,
    resolve_business,
)
from consent_ledger.cli._output import iso, short_time, write_csv, write_json, write_table
from consent_ledger.cli._values import CATEGORY

from consent_ledger import DefineCategory
from consent_ledger.model.plain import utc_seconds
from consent_ledger.model.taxonomy import Channel, TemplateCategory

if TYPE_CHECKING:
    from pathlib import Path

    from consent_ledger.model.taxonomy import Category

CATEGORY_COLUMNS = (
    "name",
    "description",
    "template_category",
    "channels",
    "built_in",
    "retired",
    "defined_at",
    "retired_at",
)


def category_json(category: Category) -> dict[str, Any]:
    """One category, with its stable JSON keys."""
    return {
        "name": category.name,
        "description": category.description,
        "template_category": str(category.template_category),
        "channels": [str(c) for c in category.channels],
        "built_in": category.built_in,
        "retired": category.retired,
        "defined_at": iso(category.defined_at),
        "retired_at": iso(category.retired_at),
    }


@click.group()
def category() -> None:
    """Define, list and retire the categories people consent to, a business's own included."""


@category.command("define")
@ledger_options
@business_option
@click.argument("name", type=CATEGORY)
@click.option(
    "--template-category",
    type=click.Choice([t.value for t in TemplateCategory]),
    required=True,
    help="How its messages go out on WhatsApp: a MARKETING template needs a MARKETING category.",
)
@click.option(
    "--description",
    required=True,
    help="What its messages are, in one line: receipts and dossiers show it to people.",
)
@click.option(
    "--channel",
    "channels",
    type=click.Choice([c.value for c in Channel]),
    multiple=True,
    help="A channel its messages go out on (repeatable) [default: every channel].",
)
def define(  # noqa: PLR0913 (one parameter per option)
    *,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    name: str,
    template_category: str,
    description: str,
    channels: tuple[str, ...],
) -> None:
    """Define a category of the business's own, beside the built-in ones.

    Notices, opt-ins, checks and audiences then take it as they take a built-in one. A
    category is never deleted, renamed or redefined (stored events keep their meaning):
    retire it instead. Its name may not be a built-in one.

    \b
    Example:
        consent-ledger category define loyalty-points --template-category MARKETING \\
            --description "Loyalty points, rewards and member offers"
    """
    ledger = open_ledger(db, key_file)
    business_id = resolve_business(ledger, business_id)
    defined = ledger.define_category(
        DefineCategory(
            business_id=business_id,
            name=name,
            description=description,
            template_category=TemplateCategory(template_category),
            channels=tuple(Channel(c) for c in channels) or tuple(Channel),
        )
    )
    click.echo(
        f"Defined category {defined.name} of {business_id} ({defined.template_category}, "
        f"{', '.join(defined.channels)}): {defined.description}"
    )


@category.command("list")
@ledger_options
@business_option
@format_option()
def list_categories(
    *, db: str, key_file: Path | None, business_id: str | None, output_format: str
) -> None:
    """List the business's categories: the built-in ones, then its own, retired ones too.

    \b
    Example:
        consent-ledger category list --format json
    """
    ledger = open_ledger(db, key_file)
    categories = ledger.list_categories(resolve_business(ledger, business_id))
    rows = [category_json(c) for c in categories]
    if output_format == "json":
        write_json(rows)
    elif output_format == "csv":
        write_csv(CATEGORY_COLUMNS, (row | {"channels": " ".join(row["channels"])} for row in rows))
    else:
        write_table(
            ("name", "template", "channels", "kind", "state", "description"),
            [_table_row(c) for c in categories],
        )


def _table_row(category: Category) -> tuple[str, ...]:
    every = set(category.channels) == set(Channel)
    kind = "built-in" if category.built_in else f"own since {short_time(category.defined_at)}"
    state = f"retired {short_time(category.retired_at)}" if category.retired else "active"
    return (
        category.name,
        str(category.template_category),
        "all" if every else ",".join(category.channels),
        kind,
        state,
        category.description,
    )


@category.command("retire")
@ledger_options
@business_option
@click.argument("name", type=CATEGORY)
def retire(*, db: str, key_file: Path | None, business_id: str | None, name: str) -> None:
    """Retire a category of the business's own: no new opt-ins or notices under it.

    Consent given to it stays what it was: still shown, checked and withdrawn, and the
    events that name it keep their meaning. Built-in categories cannot be retired.

    \b
    Example:
        consent-ledger category retire loyalty-points
    """
    ledger = open_ledger(db, key_file)
    business_id = resolve_business(ledger, business_id)
    retired = ledger.retire_category(business_id, name)
    assert retired.retired_at is not None  # noqa: S101 (retiring sets it)
    click.echo(
        f"Retired category {retired.name} of {business_id} on {utc_seconds(retired.retired_at)}: "
        "no new opt-ins or notices under it; consent given to it is still checked and withdrawn"
    )
