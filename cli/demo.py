"""``demo``: build a small, realistic ledger in a new SQLite file and show what it holds."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from consent_ledger.cli._options import given_before_command
from consent_ledger.cli._output import short_time, write_history, write_status

from consent_ledger import (
    ChangeCategories,
    ConsentLedger,
    Evidence,
    OptIn,
    OptOut,
    PublishNotice,
    RegisterBusiness,
)

BUSINESS = "acme"
ADA = "+44 7700 900123"  # Ofcom's range for drama: never a real subscriber
BRUNO = "+1 202-555-0143"  # North American 555-01XX: fictional
CHIARA = "+61 491 570 156"  # ACMA's fictional mobile range

NOTICE_EN_V1 = (
    "Yes, I'd like Acme Outfitters to send me WhatsApp messages at this number about my "
    "orders, offers and items back in stock. I can reply STOP at any time to stop them."
)
NOTICE_EN_V2 = (
    "Yes, I'd like Acme Outfitters to send me WhatsApp messages at this number about my "
    "orders, offers, items back in stock and recommendations picked for me. I can reply "
    "STOP at any time to stop them."
)
NOTICE_IT = (
    "Sì, desidero ricevere da Acme Outfitters messaggi WhatsApp a questo numero con offerte "
    "e avvisi di disponibilità. Posso revocare il consenso in qualsiasi momento rispondendo STOP."
)


def _say(text: str) -> None:
    click.echo("")
    click.secho(f"== {text}", bold=True)


@click.command()
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=given_before_command,
    help="Where to build the demo ledger (must not exist; default: a new temporary folder).",
)
def demo(db: Path | None) -> None:
    """Build a demo ledger and print the status and history of the people in it.

    Acme Outfitters publishes opt-in notices; three people opt in through different
    collection points for different categories; one changes categories, one replies
    STOP, one's consent expires. The ledger then answers as of now and as of earlier.

    \b
    Example:
        consent-ledger demo
    """
    path = db or Path(tempfile.mkdtemp(prefix="consent-ledger-demo-")) / "demo.db"
    business = RegisterBusiness(business_id=BUSINESS, display_name="Acme Outfitters")
    ledger, key_location = ConsentLedger.create(path, business=business)
    with ledger:
        click.echo(f"Demo ledger: {path} ({key_location})")
        before_late_entry = _build(ledger, datetime.now(UTC))
        _show(ledger, path, datetime.now(UTC), before_late_entry)


def _build(ledger: ConsentLedger, now: datetime) -> datetime:
    """Record the story; return a moment between the timely records and a late one."""
    _publish_notices(ledger)
    _opt_ins(ledger, now)
    _changes_of_mind(ledger, now)
    time.sleep(0.01)
    before_late_entry = datetime.now(UTC)
    time.sleep(0.01)
    _late_entry(ledger, now)
    return before_late_entry


def _publish_notices(ledger: ConsentLedger) -> None:
    """Acme's notices: English (two versions) and Italian."""
    _say("Acme Outfitters publishes its opt-in notices")
    for notice_id, language, categories, text in (
        ("whatsapp-optin", "en", ("order-updates", "offers", "back-in-stock"), NOTICE_EN_V1),
        ("negozio", "it", ("offers", "back-in-stock"), NOTICE_IT),
        (
            "whatsapp-optin",
            "en",
            ("order-updates", "offers", "back-in-stock", "recommendations"),
            NOTICE_EN_V2,
        ),
    ):
        version = ledger.publish_notice(
            PublishNotice(
                business_id=BUSINESS,
                notice_id=notice_id,
                language=language,
                categories=categories,
                text=text,
                policy_url="https://acme.example/privacy",
            )
        )
        click.echo(
            f"published {version.notice_id}@{version.version} ({version.content_hash[:19]}...)"
        )


def _opt_ins(ledger: ConsentLedger, now: datetime) -> None:
    """Ada and Bruno opt in, 30 and 20 days ago."""
    _say("Ada opts in at checkout, 30 days ago: order updates and offers")
    _record(
        ledger.opt_in,
        OptIn(
            business_id=BUSINESS,
            identifier=ADA,
            categories=("order-updates", "offers"),
            notice="whatsapp-optin@1",
            method="web-form",
            collection_point="https://acme.example/checkout",
            occurred_at=now - timedelta(days=30),
            jurisdiction="GB",
            evidence=Evidence(ip="192.0.2.10", user_agent="Mozilla/5.0 (demo)"),
        ),
    )
    _say("Bruno opts in in a WhatsApp chat, 20 days ago: order updates")
    _record(
        ledger.opt_in,
        OptIn(
            business_id=BUSINESS,
            identifier=BRUNO,
            categories=("order-updates",),
            notice="whatsapp-optin@1",
            method="whatsapp-thread",
            collection_point="wa-support-line",
            occurred_at=now - timedelta(days=20),
            jurisdiction="US",
            evidence=Evidence(text="Customer tapped 'Yes, keep me posted' under the notice."),
        ),
    )


def _changes_of_mind(ledger: ConsentLedger, now: datetime) -> None:
    """Ada changes her categories; Bruno replies STOP."""
    _say("Ada changes her mind in the preference centre, 10 days ago: recommendations, no offers")
    _record(
        ledger.change_categories,
        ChangeCategories(
            business_id=BUSINESS,
            identifier=ADA,
            grant=("recommendations",),
            withdraw=("offers",),
            notice="whatsapp-optin@2",
            method="web-form",
            collection_point="https://acme.example/preferences",
            occurred_at=now - timedelta(days=10),
        ),
    )
    _say("Bruno replies STOP, 2 days ago: everything on WhatsApp is withdrawn")
    _record(
        ledger.opt_out,
        OptOut(
            business_id=BUSINESS,
            identifier=BRUNO,
            method="whatsapp-thread",
            occurred_at=now - timedelta(days=2),
            reason="replied STOP",
            evidence=Evidence(text="STOP"),
        ),
    )


def _late_entry(ledger: ConsentLedger, now: datetime) -> None:
    """Chiara's paper form, signed 25 days ago, entered only now (and since expired)."""
    _say("Chiara's paper form from the shop, signed 25 days ago, is entered only now")
    _record(
        ledger.opt_in,
        OptIn(
            business_id=BUSINESS,
            identifier=CHIARA,
            categories=("offers", "back-in-stock"),
            notice="negozio@1",
            method="paper",
            collection_point="shop-milano-01",
            actor="operator:shop-milano",
            occurred_at=now - timedelta(days=25),
            expires_at=now - timedelta(days=5),
            jurisdiction="IT",
            evidence=Evidence(text="Signed form no. 4471, filed in the shop's binder."),
        ),
    )


def _record(command: object, argument: object) -> None:
    recorded = command(argument)  # type: ignore[operator]
    click.echo(
        f"recorded {recorded.event_type} #{recorded.version} (subject {recorded.subject_id})"
    )


def _show(ledger: ConsentLedger, path: Path, now: datetime, before_late_entry: datetime) -> None:
    _say("Status now")
    for person in (ADA, BRUNO, CHIARA):
        click.echo("")
        write_status(ledger.get_status(person, business_id=BUSINESS), "table")

    earlier = now - timedelta(days=15)
    _say(f"Status as it was 15 days ago ({short_time(earlier)})")
    for person in (ADA, BRUNO, CHIARA):
        click.echo("")
        write_status(ledger.get_status(person, business_id=BUSINESS, at=earlier), "table")

    _say(
        "Chiara 15 days ago, as the ledger knew it before her form was entered: nothing "
        "(the same question today, above, finds her consent)"
    )
    click.echo("")
    write_status(
        ledger.get_status(CHIARA, business_id=BUSINESS, at=earlier, known_at=before_late_entry),
        "table",
    )

    _say("Histories")
    for person in (ADA, BRUNO, CHIARA):
        click.echo("")
        write_history(ledger.get_history(person, business_id=BUSINESS), "table")

    click.echo("")
    click.echo(f'Explore it: consent-ledger status "{ADA}" --db {path} --format json')
