"""Categories a business owns (issue #12): defined, used like the built-in ones, retired.

On both stores: a business's own category goes through notices, opt-ins, checks,
audiences, receipts and dossiers exactly as a built-in one; retiring it refuses new
opt-ins and notices and nothing else; businesses do not see each other's.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from consent_ledger.projections import ConsentStatusView, catch_up, open_view_database

from consent_ledger import (
    CATEGORIES,
    CategoryExistsError,
    CategoryRetiredError,
    CategoryRuleError,
    ChangeCategories,
    ConfirmOptIn,
    ConsentLedger,
    DefineCategory,
    InvalidInputError,
    OptIn,
    OptOut,
    PublishNotice,
    RecordPlatformPreference,
    RegisterBusiness,
    UnknownCategoryError,
)
from consent_ledger.model.status import State
from consent_ledger.reports.dossier import gather_dossier, render_html
from consent_ledger.reports.receipts import receipts
from consent_ledger.whatsapp.keywords import Keywords

from .conftest import BUSINESS, BUSINESS_NAME

if TYPE_CHECKING:
    from collections.abc import Iterator

    from consent_ledger.sending.eligibility import Decision

ADA = "+447700900123"
CARLA = "+447700900456"
LOYALTY = "Loyalty points, rewards and member offers"
TICKETS = "Tickets and reminders for the events you booked"
LOYALTY_TEXT = f"Yes, {BUSINESS_NAME} may send me WhatsApp messages about my loyalty points."
PAYLOADS = Path(__file__).parent / "payloads" / "whatsapp"
OPTED_IN = datetime(2026, 10, 1, 9, tzinfo=UTC)  # before the webhooks' messages


def define(
    ledger: ConsentLedger,
    name: str = "loyalty-points",
    template_category: str = "MARKETING",
    description: str = LOYALTY,
    **fields: Any,
) -> None:
    ledger.define_category(
        DefineCategory(
            business_id=fields.pop("business_id", BUSINESS),
            name=name,
            description=description,
            template_category=template_category,
            **fields,
        )
    )


def publish(ledger: ConsentLedger, *categories: str, **fields: Any) -> None:
    ledger.publish_notice(
        PublishNotice(
            business_id=fields.pop("business_id", BUSINESS),
            notice_id=fields.pop("notice_id", "loyalty-optin"),
            language="en",
            categories=categories,
            text=fields.pop("text", LOYALTY_TEXT),
            **fields,
        )
    )


def opt_in(ledger: ConsentLedger, *categories: str, **fields: Any) -> None:
    values: dict[str, Any] = {
        "business_id": BUSINESS,
        "identifier": ADA,
        "categories": categories,
        "notice": "loyalty-optin",
        "method": "web-form",
        "occurred_at": OPTED_IN,
    }
    ledger.opt_in(OptIn(**(values | fields)))


def states(ledger: ConsentLedger, identifier: str = ADA) -> dict[str, State]:
    status = ledger.get_status(identifier, business_id=BUSINESS)
    return {c.category: c.state for c in status.consents if c.channel == "whatsapp"}


@pytest.fixture
def loyal(ledger: ConsentLedger) -> ConsentLedger:
    """Acme defined loyalty-points (MARKETING), published a notice for it; Ada opted in."""
    define(ledger)
    publish(ledger, "loyalty-points", "order-updates")
    opt_in(ledger, "loyalty-points")
    return ledger


class TestDefine:
    def test_the_businesss_own_follow_the_built_in_ones(self, ledger: ConsentLedger) -> None:
        define(ledger, channels=("email", "whatsapp"))

        *built_in, own = ledger.list_categories(BUSINESS)

        assert [c.name for c in built_in] == list(CATEGORIES)
        assert (own.name, own.description, own.template_category) == (
            "loyalty-points",
            LOYALTY,
            "MARKETING",
        )
        assert own.channels == ("whatsapp", "email")  # in the channels' own order
        assert not own.built_in
        assert own.defined_at is not None
        assert own.retired_at is None

    def test_a_built_in_name_is_refused(self, ledger: ConsentLedger) -> None:
        with pytest.raises(CategoryExistsError, match="'offers' is a built-in category"):
            define(ledger, "offers")

    def test_a_name_is_never_defined_twice_even_once_retired(self, ledger: ConsentLedger) -> None:
        define(ledger)
        ledger.retire_category(BUSINESS, "loyalty-points")

        with pytest.raises(CategoryExistsError, match="never redefined or renamed"):
            define(ledger, template_category="UTILITY")

    @pytest.mark.parametrize("name", ["Loyalty", "loyalty points", "", "-points", "x" * 65])
    def test_a_malformed_name_is_refused(self, ledger: ConsentLedger, name: str) -> None:
        with pytest.raises(InvalidInputError, match="is not a category name"):
            define(ledger, name)

    def test_a_blank_description_is_refused(self, ledger: ConsentLedger) -> None:
        with pytest.raises(InvalidInputError, match="is not a description"):
            define(ledger, description="  ")


class TestUsedAsABuiltInOne:
    def test_an_opt_in_needs_a_notice_that_covers_it(self, ledger: ConsentLedger) -> None:
        define(ledger)

        with pytest.raises(UnknownCategoryError, match="unknown category 'loyalty-point'"):
            publish(ledger, "loyalty-point")
        publish(ledger, "loyalty-points")
        opt_in(ledger, "loyalty-points")

        assert states(ledger) == {"loyalty-points": State.GRANTED}

    def test_check_applies_its_template_category(self, loyal: ConsentLedger) -> None:
        """A MARKETING category of the business's own is sent as marketing: stops bar it."""
        assert loyal.check(ADA, business_id=BUSINESS, category="loyalty-points").allowed
        loyal.record_platform_preference(
            RecordPlatformPreference(business_id=BUSINESS, identifier=ADA, stopped=True)
        )

        decision = loyal.check(ADA, business_id=BUSINESS, category="loyalty-points")

        assert decision.request.template_category == "MARKETING"
        assert (decision.allowed, decision.reason) == (False, "platform-marketing-stop")

    def test_a_marketing_template_needs_a_marketing_category(self, ledger: ConsentLedger) -> None:
        define(ledger, "event-tickets", "UTILITY", TICKETS)
        publish(ledger, "event-tickets")
        opt_in(ledger, "event-tickets")

        utility = ledger.check(ADA, business_id=BUSINESS, category="event-tickets")
        marketing = ledger.check(
            ADA, business_id=BUSINESS, category="event-tickets", template_category="MARKETING"
        )

        assert (utility.allowed, utility.request.template_category) == (True, "UTILITY")
        assert (marketing.allowed, marketing.reason) == (False, "template-category-mismatch")
        assert marketing.detail.endswith("event-tickets is UTILITY")

    def test_a_check_from_the_view_agrees(
        self, loyal: ConsentLedger, view: ConsentStatusView
    ) -> None:
        catch_up(loyal.event_log, view)

        decision = loyal.check(ADA, business_id=BUSINESS, category="loyalty-points", source=view)

        assert (decision.allowed, decision.reason, decision.event_type) == (
            True,
            "consented",
            "OptedIn",
        )

    def test_the_audience_holds_who_opted_in(
        self, loyal: ConsentLedger, view: ConsentStatusView
    ) -> None:
        opt_in(loyal, "order-updates", identifier=CARLA)
        catch_up(loyal.event_log, view)

        candidates = view.audience(BUSINESS, "whatsapp", "loyalty-points", sender=None)
        recipients = loyal.audience(candidates, business_id=BUSINESS, category="loyalty-points")

        assert [str(r.identifier) for r in recipients] == [ADA]

    def test_an_unknown_category_is_refused_naming_the_businesss(
        self, loyal: ConsentLedger
    ) -> None:
        with pytest.raises(UnknownCategoryError) as refused:
            loyal.check(ADA, business_id=BUSINESS, category="loyalty-pts")

        assert str(refused.value).startswith(
            "unknown category 'loyalty-pts'; this business's categories: order-updates, "
        )
        assert str(refused.value).endswith(", newsletters, loyalty-points")

    def test_the_receipt_names_its_description(self, loyal: ConsentLedger) -> None:
        [receipt] = receipts(loyal, ADA, business_id=BUSINESS)

        [purpose] = receipt["services"][0]["purposes"]
        assert purpose["purpose"] == f"{LOYALTY} (loyalty-points)"
        assert purpose["purposeCategory"] == ["6 - Marketing"]

    def test_the_dossier_names_its_description(self, loyal: ConsentLedger) -> None:
        dossier = gather_dossier(loyal, ADA, business_id=BUSINESS, checkpoint=loyal.checkpoint())

        page = render_html(dossier)

        assert [c.name for c in dossier.categories_named] == ["loyalty-points", "order-updates"]
        assert f"{LOYALTY} (MARKETING messages; defined by {BUSINESS_NAME} on" in page


@pytest.fixture
def view(ledger: ConsentLedger) -> Iterator[ConsentStatusView]:
    """The consent-status view of the ledger, caught up when a test asks."""
    assert ledger.store is not None
    database = open_view_database(ledger.store)
    yield ConsentStatusView(database)
    database.close()


class TestRetire:
    def test_new_opt_ins_and_notices_are_refused(self, loyal: ConsentLedger) -> None:
        retired = loyal.retire_category(BUSINESS, "loyalty-points")

        assert retired.retired_at is not None
        with pytest.raises(CategoryRetiredError, match=r"was retired on .*: no new opt-ins$"):
            opt_in(loyal, "loyalty-points", identifier=CARLA)
        with pytest.raises(CategoryRetiredError, match="no new opt-ins"):
            loyal.change_categories(
                ChangeCategories(
                    business_id=BUSINESS,
                    identifier=ADA,
                    grant=("loyalty-points",),
                    notice="loyalty-optin@1",
                    method="web-form",
                )
            )
        with pytest.raises(CategoryRetiredError, match="no new notices"):
            publish(loyal, "loyalty-points", notice_id="loyalty-optin-2")
        assert states(loyal, ADA) == {"loyalty-points": State.GRANTED}

    def test_consent_given_is_still_checked_and_withdrawn(self, loyal: ConsentLedger) -> None:
        loyal.retire_category(BUSINESS, "loyalty-points")

        allowed = loyal.check(ADA, business_id=BUSINESS, category="loyalty-points")
        loyal.opt_out(
            OptOut(
                business_id=BUSINESS,
                identifier=ADA,
                categories=("loyalty-points",),
                method="whatsapp-thread",
            )
        )
        withdrawn = loyal.check(ADA, business_id=BUSINESS, category="loyalty-points")

        assert allowed.allowed
        assert (withdrawn.allowed, withdrawn.reason) == (False, "withdrawn")

    def test_it_is_listed_retired_and_named_apart_in_errors(self, loyal: ConsentLedger) -> None:
        loyal.retire_category(BUSINESS, "loyalty-points")

        assert loyal.list_categories(BUSINESS)[-1].retired
        with pytest.raises(UnknownCategoryError, match=r"newsletters \(retired: loyalty-points\)$"):
            opt_in(loyal, "loyalty")

    def test_an_opt_in_awaiting_confirmation_may_still_be_confirmed(
        self, ledger: ConsentLedger
    ) -> None:
        """Confirming completes a decision made before: it is no new opt-in."""
        define(ledger)
        publish(ledger, "loyalty-points")
        opt_in(ledger, "loyalty-points", awaiting_confirmation=True)
        ledger.retire_category(BUSINESS, "loyalty-points")

        ledger.confirm_opt_in(
            ConfirmOptIn(
                business_id=BUSINESS,
                identifier=ADA,
                categories=("loyalty-points",),
                method="whatsapp-thread",
            )
        )

        assert states(ledger) == {"loyalty-points": State.GRANTED}

    def test_only_once(self, loyal: ConsentLedger) -> None:
        loyal.retire_category(BUSINESS, "loyalty-points")

        with pytest.raises(CategoryRetiredError, match="already"):
            loyal.retire_category(BUSINESS, "loyalty-points")

    def test_built_in_ones_cannot_be_retired(self, ledger: ConsentLedger) -> None:
        with pytest.raises(CategoryRuleError, match="'offers' is a built-in category"):
            ledger.retire_category(BUSINESS, "offers")

    def test_an_unknown_one_is_refused(self, ledger: ConsentLedger) -> None:
        with pytest.raises(UnknownCategoryError, match="unknown category 'loyalty-points'"):
            ledger.retire_category(BUSINESS, "loyalty-points")


class TestChannels:
    def test_a_category_for_e_mail_is_refused_on_whatsapp(self, ledger: ConsentLedger) -> None:
        define(ledger, channels=("email",))

        with pytest.raises(CategoryRuleError, match="is for email messages, not whatsapp"):
            publish(ledger, "loyalty-points")
        publish(ledger, "loyalty-points", channel="email")
        opt_in(ledger, "loyalty-points", channel="email", identifier="email:ada@example.com")


class TestBusinessesApart:
    def test_one_businesss_categories_are_not_anothers(self, loyal: ConsentLedger) -> None:
        loyal.register_business(RegisterBusiness(business_id="bistro", display_name="Bistro"))
        text = "Yes, Bistro may send me WhatsApp messages about my loyalty points."

        assert "loyalty-points" not in [c.name for c in loyal.list_categories("bistro")]
        with pytest.raises(UnknownCategoryError, match="unknown category 'loyalty-points'"):
            publish(loyal, "loyalty-points", business_id="bistro", text=text)
        with pytest.raises(UnknownCategoryError, match="unknown category 'loyalty-points'"):
            loyal.check(ADA, business_id="bistro", category="loyalty-points")

    def test_each_may_define_the_same_name_its_own_way(self, loyal: ConsentLedger) -> None:
        loyal.register_business(RegisterBusiness(business_id="bistro", display_name="Bistro"))
        define(loyal, template_category="UTILITY", description="Points", business_id="bistro")

        theirs = loyal.check(ADA, business_id="bistro", category="loyalty-points")
        ours = loyal.check(ADA, business_id=BUSINESS, category="loyalty-points")

        assert (theirs.request.template_category, theirs.reason) == ("UTILITY", "no-consent")
        assert (ours.request.template_category, ours.reason) == ("MARKETING", "consented")


def test_events_naming_it_load_when_the_ledger_is_opened_again(
    ledger_at: tuple[ConsentLedger, str, Path | None],
) -> None:
    ledger, db, key_file = ledger_at
    define(ledger)
    publish(ledger, "loyalty-points")
    opt_in(ledger, "loyalty-points")
    ledger.retire_category(BUSINESS, "loyalty-points")
    ledger.close()

    again = ConsentLedger.open(db, key_file=key_file)
    try:
        decision: Decision = again.check(ADA, business_id=BUSINESS, category="loyalty-points")
        history = again.get_history(ADA, business_id=BUSINESS)
        own = again.list_categories(BUSINESS)[-1]
    finally:
        again.close()

    assert (decision.allowed, decision.request.template_category) == (True, "MARKETING")
    assert history.entries[-1].granted == ("loyalty-points",)
    assert (own.name, own.description, own.retired) == ("loyalty-points", LOYALTY, True)


class TestWhatsApp:
    def test_stop_promotions_withdraws_the_businesss_own_marketing(
        self, ledger: ConsentLedger
    ) -> None:
        define(ledger)
        define(ledger, "event-tickets", "UTILITY", TICKETS)
        publish(ledger, "loyalty-points", "event-tickets", "offers", "order-updates")
        opt_in(ledger, "loyalty-points", "event-tickets", "offers", "order-updates")

        ledger.ingest_whatsapp(payload("button_stop_promotions.json"), business_id=BUSINESS)

        after = states(ledger)
        assert {name for name, state in after.items() if state is State.GRANTED} == {
            "event-tickets",
            "order-updates",
        }
        assert (after["loyalty-points"], after["offers"]) == (State.WITHDRAWN, State.WITHDRAWN)

    def test_a_keyword_rule_may_name_the_businesss_own(self, loyal: ConsentLedger) -> None:
        rule = {"word": "NO POINTS", "kind": "opt_out", "categories": ["loyalty-points"]}
        keywords = Keywords.from_config({"rules": [rule]})

        loyal.ingest_whatsapp(text_from_ada("No points"), business_id=BUSINESS, keywords=keywords)

        assert states(loyal) == {"loyalty-points": State.WITHDRAWN}

    def test_a_keyword_rule_naming_no_category_of_the_business_takes_nothing(
        self, loyal: ConsentLedger
    ) -> None:
        rule = {"word": "NO POINTS", "kind": "opt_out", "categories": ["loyalty-pts"]}
        keywords = Keywords.from_config({"rules": [rule]})

        with pytest.raises(UnknownCategoryError, match="keyword rule 'NO POINTS': unknown"):
            loyal.ingest_whatsapp(text_from_ada("STOP"), business_id=BUSINESS, keywords=keywords)
        assert states(loyal) == {"loyalty-points": State.GRANTED}

    def test_start_restores_no_category_retired_since(self, ledger: ConsentLedger) -> None:
        define(ledger)
        publish(ledger, "loyalty-points", "offers")
        opt_in(ledger, "loyalty-points", "offers")
        ledger.retire_category(BUSINESS, "loyalty-points")

        ledger.ingest_whatsapp(stop_then_start_from_ada(), business_id=BUSINESS)

        assert states(ledger) == {
            "*": State.WITHDRAWN,  # the STOP
            "loyalty-points": State.WITHDRAWN,
            "offers": State.GRANTED,  # the START
        }
        assert ledger.get_history(ADA, business_id=BUSINESS).entries[-1].granted == ("offers",)


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def text_from_ada(text: str) -> Any:
    body = payload("text_stop.json")
    value = body["entry"][0]["changes"][0]["value"]
    [message] = value["messages"]
    assert message["from"] == "447700900123"
    message["text"]["body"] = text
    return body


def stop_then_start_from_ada() -> Any:
    """The STOP and START of text_stop_then_start.json, sent from Ada's number."""
    body = copy.deepcopy(payload("text_stop_then_start.json"))
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = "447700900123"
    for message in value["messages"]:
        message["from"] = "447700900123"
    return body
