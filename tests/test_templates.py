"""Templates: the category in force at each moment, from operators and WhatsApp's webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from consent_ledger.projections import AuditLogView, AuditQuery, catch_up, open_view_database

from consent_ledger import ConsentLedger, OptIn, TemplateCategory
from consent_ledger.exceptions import InvalidInputError

from .conftest import BUSINESS

PAYLOADS = Path(__file__).parent / "payloads" / "whatsapp"
TEMPLATE = ("order_shipped_with_offer", "en_US")  # the fixtures' template
CHANGED_AT = datetime(2026, 11, 21, 10, 10, tzinfo=UTC)  # the completed update's time
ADA = "+447700900123"


def completed_update() -> object:
    return json.loads((PAYLOADS / "template_category_update_completed.json").read_text())


@pytest.fixture
def utility_until_webhook(ledger: ConsentLedger) -> ConsentLedger:
    """The template was UTILITY from 1 November; Ada opted in to order updates."""
    ledger.set_template_category(
        BUSINESS, *TEMPLATE, "UTILITY", effective_at=datetime(2026, 11, 1, tzinfo=UTC)
    )
    ledger.opt_in(
        OptIn(
            business_id=BUSINESS,
            identifier=ADA,
            categories=("order-updates",),
            notice="whatsapp-optin@1",
            method="web-form",
            occurred_at=datetime(2026, 10, 1, tzinfo=UTC),
        )
    )
    return ledger


def test_a_completed_update_is_in_force_from_its_time(utility_until_webhook: ConsentLedger) -> None:
    ledger = utility_until_webhook

    report = ledger.ingest_whatsapp(completed_update(), business_id=BUSINESS)

    assert [o.action for o in report.outcomes] == ["template-category-changed"]
    before = datetime(2026, 11, 20, tzinfo=UTC)
    assert ledger.template_category(BUSINESS, *TEMPLATE, at=before) is TemplateCategory.UTILITY
    assert ledger.template_category(BUSINESS, *TEMPLATE) is TemplateCategory.MARKETING
    changes = ledger.template_changes(BUSINESS, *TEMPLATE)
    assert [(c.category, c.source) for c in changes] == [
        (TemplateCategory.UTILITY, "operator"),
        (TemplateCategory.MARKETING, "whatsapp"),
    ]
    assert changes[1].effective_at == CHANGED_AT


def test_a_send_is_judged_by_the_category_in_force_when_it_is_sent(
    utility_until_webhook: ConsentLedger,
) -> None:
    ledger = utility_until_webhook
    ledger.ingest_whatsapp(completed_update(), business_id=BUSINESS)

    def check(at: datetime) -> tuple[bool, str]:
        decision = ledger.check(
            ADA, business_id=BUSINESS, category="order-updates", template=TEMPLATE, at=at
        )
        return decision.allowed, decision.reason

    assert check(datetime(2026, 11, 20, tzinfo=UTC)) == (True, "consented")
    assert check(datetime(2026, 11, 22, tzinfo=UTC)) == (False, "template-category-mismatch")


def test_the_same_update_twice_changes_the_category_once(
    utility_until_webhook: ConsentLedger,
) -> None:
    ledger = utility_until_webhook
    ledger.ingest_whatsapp(completed_update(), business_id=BUSINESS)

    again = ledger.ingest_whatsapp(completed_update(), business_id=BUSINESS)

    assert [o.action for o in again.outcomes] == ["duplicate"]
    assert len(ledger.template_changes(BUSINESS, *TEMPLATE)) == 2


def test_an_impending_update_is_announced_not_in_force(
    utility_until_webhook: ConsentLedger,
) -> None:
    ledger = utility_until_webhook
    body = json.loads((PAYLOADS / "template_category_update_impending.json").read_text())

    report = ledger.ingest_whatsapp(body, business_id=BUSINESS)

    assert [o.action for o in report.outcomes] == ["template-category-announced"]
    value = body["entry"][0]["changes"][0]["value"]
    template = (value["message_template_name"], value["message_template_language"])
    assert [c.source for c in ledger.template_changes(BUSINESS, *template)] == ["operator"]
    assert ledger.template_category(BUSINESS, *template) is TemplateCategory.UTILITY


def test_a_template_without_a_recorded_category_is_an_error(ledger: ConsentLedger) -> None:
    with pytest.raises(InvalidInputError, match="no category is recorded for template nope"):
        ledger.check(ADA, business_id=BUSINESS, category="offers", template=("nope", "en"))


def test_a_template_and_a_template_category_together_are_an_error(
    utility_until_webhook: ConsentLedger,
) -> None:
    with pytest.raises(InvalidInputError, match="not both"):
        utility_until_webhook.check(
            ADA,
            business_id=BUSINESS,
            category="order-updates",
            template=TEMPLATE,
            template_category="UTILITY",
        )


def test_an_audit_of_the_business_includes_its_template_changes(
    utility_until_webhook: ConsentLedger,
) -> None:
    """Exports and audits filtered by business select through the audit log."""
    ledger = utility_until_webhook
    ledger.ingest_whatsapp(completed_update(), business_id=BUSINESS)
    assert ledger.store is not None
    database = open_view_database(ledger.store)
    view = AuditLogView(database)
    catch_up(ledger.event_log, view)

    rows = view.query(AuditQuery(business_id=BUSINESS, stream_types=("Template",)))

    assert [row.event_type for row in rows] == ["Registered", "CategoryChanged", "CategoryChanged"]
    database.close()
