"""The send-time check: each reason, under each policy, from the record and from the view."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

import pytest
from consent_ledger.projections import ConsentStatusView, catch_up, open_view_database

from consent_ledger import (
    ConfirmOptIn,
    ConsentLedger,
    ConsentRuleError,
    OptIn,
    OptOut,
    RecordPlatformPreference,
    UnknownCategoryError,
)
from consent_ledger.sending.eligibility import Decision, Reason, UnknownPolicyError, policies

from .conftest import BUSINESS

if TYPE_CHECKING:
    from collections.abc import Iterator

ADA = "+447700900123"
NOW = datetime.now(UTC)
SHOP = "15550001111"
OTHER_SHOP = "15550002222"

Check: TypeAlias = Callable[..., Decision]


@pytest.fixture(params=["record", "view"])
def check(request: pytest.FixtureRequest, ledger: ConsentLedger) -> Iterator[Check]:
    """ledger.check, reading consent from the record itself or from a caught-up view."""
    if request.param == "record":
        yield lambda identifier=ADA, **kw: ledger.check(identifier, business_id=BUSINESS, **kw)
        return
    assert ledger.store is not None
    database = open_view_database(ledger.store)
    view = ConsentStatusView(database)

    def via_view(identifier: str = ADA, **kw: Any) -> Decision:
        catch_up(ledger.event_log, view)
        return ledger.check(identifier, business_id=BUSINESS, source=view, **kw)

    yield via_view
    database.close()


def opt_in(ledger: ConsentLedger, **fields: Any) -> None:
    values: dict[str, Any] = {
        "business_id": BUSINESS,
        "identifier": ADA,
        "categories": ("offers", "order-updates"),
        "notice": "whatsapp-optin@1",
        "method": "web-form",
    }
    ledger.opt_in(OptIn(**(values | fields)))


def stop(ledger: ConsentLedger, sender: str | None, *, stopped: bool = True) -> None:
    ledger.record_platform_preference(
        RecordPlatformPreference(
            business_id=BUSINESS, identifier=ADA, sender=sender, stopped=stopped
        )
    )


class TestConsent:
    def test_granted_consent_allows_and_names_its_event(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger)

        decision = check(category="offers")

        assert (decision.allowed, decision.reason) == (True, Reason.CONSENTED)
        assert (decision.event_version, decision.event_type) == (2, "OptedIn")
        assert decision.subject_id == ledger.find_subject(ADA, business_id=BUSINESS)
        assert decision.policy == "whatsapp-2025"

    def test_a_stranger_has_no_consent(self, check: Check) -> None:
        decision = check(category="offers")

        assert (decision.allowed, decision.reason, decision.subject_id) == (
            False,
            Reason.NO_CONSENT,
            None,
        )

    def test_a_category_never_granted(self, ledger: ConsentLedger, check: Check) -> None:
        opt_in(ledger, categories=("order-updates",))

        assert check(category="offers").reason == Reason.NO_CONSENT

    def test_withdrawn(self, ledger: ConsentLedger, check: Check) -> None:
        opt_in(ledger)
        ledger.opt_out(OptOut(business_id=BUSINESS, identifier=ADA, method="api"))

        decision = check(category="offers")

        assert (decision.reason, decision.event_type) == (Reason.WITHDRAWN, "OptedOut")

    def test_expired(self, ledger: ConsentLedger, check: Check) -> None:
        opt_in(ledger, occurred_at=NOW - timedelta(days=9), expires_at=NOW - timedelta(days=1))

        decision = check(category="offers")

        assert (decision.reason, decision.event_type) == (Reason.EXPIRED, "OptedIn")

    def test_pending_double_opt_in(self, ledger: ConsentLedger, check: Check) -> None:
        opt_in(ledger, awaiting_confirmation=True)
        assert check(category="offers").reason == Reason.PENDING_CONFIRMATION

        ledger.confirm_opt_in(
            ConfirmOptIn(business_id=BUSINESS, identifier=ADA, categories=("offers",), method="api")
        )

        decision = check(category="offers")
        assert (decision.reason, decision.event_type) == (Reason.CONSENTED, "OptInConfirmed")

    def test_a_sender_narrowed_opt_out_denies_only_that_sender(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger)
        ledger.opt_out(
            OptOut(business_id=BUSINESS, identifier=ADA, method="api", sender=SHOP, categories=None)
        )

        assert check(category="offers", sender=SHOP).reason == Reason.WITHDRAWN
        assert check(category="offers", sender=OTHER_SHOP).reason == Reason.CONSENTED
        assert check(category="offers").reason == Reason.CONSENTED


class TestPlatformMarketingStop:
    def test_a_stop_denies_marketing_from_that_sender_only(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger)
        stop(ledger, SHOP)

        denied = check(category="offers", sender=SHOP)

        assert (denied.reason, denied.event_type) == (
            Reason.PLATFORM_MARKETING_STOP,
            "PlatformMarketingStopped",
        )
        assert check(category="offers", sender=OTHER_SHOP).allowed
        assert check(category="order-updates", sender=SHOP).allowed  # UTILITY is not marketing

    def test_with_no_sender_named_any_stop_denies(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger)
        stop(ledger, SHOP)

        assert check(category="offers").reason == Reason.PLATFORM_MARKETING_STOP

    def test_a_resume_lifts_the_stop(self, ledger: ConsentLedger, check: Check) -> None:
        opt_in(ledger)
        stop(ledger, SHOP)
        stop(ledger, SHOP, stopped=False)

        assert check(category="offers", sender=SHOP).allowed

    def test_a_stop_for_every_sender(self, ledger: ConsentLedger, check: Check) -> None:
        opt_in(ledger)
        stop(ledger, None)

        assert check(category="offers", sender=OTHER_SHOP).reason == (
            Reason.PLATFORM_MARKETING_STOP
        )

    def test_policies_without_the_rule_ignore_stops(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger)
        stop(ledger, SHOP)

        assert check(category="offers", sender=SHOP, policy="consent-only").allowed


class TestTemplateCategories:
    def test_a_marketing_template_needs_a_marketing_category(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger)

        decision = check(category="order-updates", template_category="MARKETING")

        assert decision.reason == Reason.TEMPLATE_CATEGORY_MISMATCH
        assert "order-updates is UTILITY" in decision.detail

    def test_the_template_category_defaults_to_the_categorys_own(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger)
        stop(ledger, SHOP)

        assert check(category="offers", sender=SHOP).request.template_category == "MARKETING"
        assert check(category="offers", sender=SHOP, template_category="UTILITY").allowed


class TestServiceWindow:
    def test_utility_without_opt_in_is_allowed_in_an_open_window(self, check: Check) -> None:
        decision = check(category="order-updates", in_service_window=True)

        assert (decision.allowed, decision.reason) == (True, Reason.SERVICE_WINDOW)
        assert decision.event_type is None

    def test_marketing_is_not(self, check: Check) -> None:
        assert check(category="offers", in_service_window=True).reason == Reason.NO_CONSENT

    def test_a_withdrawal_still_denies(self, ledger: ConsentLedger, check: Check) -> None:
        opt_in(ledger)
        ledger.opt_out(OptOut(business_id=BUSINESS, identifier=ADA, method="api"))

        assert check(category="order-updates", in_service_window=True).reason == Reason.WITHDRAWN


class TestCountries:
    @pytest.mark.parametrize(
        ("number", "allowed"),
        [
            ("+447700900123", True),  # GB
            ("+18765550123", True),  # JM, shares +1 with US
            ("+12025550143", True),  # US
            ("+33612345678", False),  # FR: not in the 2021 list
            ("+61491570156", False),  # AU
        ],
    )
    def test_whatsapp_2021_allows_only_its_20_countries(
        self, ledger: ConsentLedger, check: Check, number: str, *, allowed: bool
    ) -> None:
        opt_in(ledger, identifier=number)

        decision = check(number, category="offers", policy="whatsapp-2021")

        assert decision.allowed is allowed
        assert decision.reason == (Reason.CONSENTED if allowed else Reason.COUNTRY_NOT_ALLOWED)

    def test_a_recipient_without_a_number_has_no_country(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger, identifier="email:ada@example.com")

        decision = check("email:ada@example.com", category="offers", policy="whatsapp-2021")

        assert decision.reason == Reason.COUNTRY_NOT_ALLOWED
        assert "no known country" in decision.detail


class TestAsOfAMoment:
    def test_at_a_past_moment_folds_the_record(self, ledger: ConsentLedger, check: Check) -> None:
        opt_in(ledger, occurred_at=NOW - timedelta(days=10))
        ledger.opt_out(OptOut(business_id=BUSINESS, identifier=ADA, method="api"))

        assert check(category="offers").reason == Reason.WITHDRAWN
        assert check(category="offers", at=NOW - timedelta(days=5)).allowed
        assert check(category="offers", at=NOW - timedelta(days=11)).reason == Reason.NO_CONSENT


class TestBadInput:
    def test_an_unknown_policy(self, ledger: ConsentLedger) -> None:
        with pytest.raises(UnknownPolicyError, match="unknown policy 'whatsapp-1999'; policies"):
            ledger.check(ADA, business_id=BUSINESS, category="offers", policy="whatsapp-1999")

    def test_an_unknown_category(self, ledger: ConsentLedger) -> None:
        with pytest.raises(UnknownCategoryError, match="unknown category 'ofers'"):
            ledger.check(ADA, business_id=BUSINESS, category="ofers")


def test_policies_are_data() -> None:
    """The presets load from JSON files and say what they are."""
    presets = policies()

    assert set(presets) >= {"whatsapp-2021", "whatsapp-2025", "consent-only"}
    assert len(presets["whatsapp-2021"].recipient_countries or ()) == 20
    assert all(p.description and p.source for p in presets.values())


class TestThePrecedenceTheReadmeStates:
    """The rules of README "Send-time checks: which event decides", one test each."""

    def test_a_pending_opt_in_past_its_expiry_reads_expired(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(
            ledger,
            awaiting_confirmation=True,
            occurred_at=NOW - timedelta(days=3),
            expires_at=NOW - timedelta(days=1),
        )

        decision = check(category="offers")
        status = ledger.get_status(ADA, business_id=BUSINESS)
        [offers] = [c for c in status.consents if c.category == "offers"]

        assert decision.reason == Reason.EXPIRED
        assert offers.state == "expired"

    def test_a_pending_opt_in_past_its_expiry_cannot_be_confirmed(
        self, ledger: ConsentLedger
    ) -> None:
        opt_in(
            ledger,
            awaiting_confirmation=True,
            occurred_at=NOW - timedelta(days=3),
            expires_at=NOW - timedelta(days=1),
        )

        with pytest.raises(ConsentRuleError, match="awaited confirmation"):
            ledger.confirm_opt_in(
                ConfirmOptIn(
                    business_id=BUSINESS, identifier=ADA, categories=("offers",), method="web-form"
                )
            )

    def test_a_confirmation_for_every_sender_covers_a_sender_whose_own_grant_lapsed(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger, awaiting_confirmation=True, occurred_at=NOW - timedelta(days=5))
        opt_in(
            ledger,
            sender=SHOP,
            occurred_at=NOW - timedelta(days=4),
            expires_at=NOW - timedelta(days=3),
        )
        ledger.confirm_opt_in(
            ConfirmOptIn(
                business_id=BUSINESS,
                identifier=ADA,
                categories=("offers",),
                method="web-form",
                occurred_at=NOW - timedelta(days=1),
            )
        )

        from_shop = check(category="offers", sender=SHOP)
        from_anyone = check(category="offers")

        assert (from_shop.reason, from_shop.event_type) == (Reason.CONSENTED, "OptInConfirmed")
        assert (from_anyone.reason, from_anyone.event_type) == (Reason.CONSENTED, "OptInConfirmed")

    def test_a_sender_grant_still_in_force_is_what_a_send_from_it_rests_on(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        opt_in(ledger, awaiting_confirmation=True, occurred_at=NOW - timedelta(days=5))
        opt_in(ledger, sender=SHOP, occurred_at=NOW - timedelta(days=4))

        from_shop = check(category="offers", sender=SHOP)
        from_anyone = check(category="offers")
        from_another = check(category="offers", sender=OTHER_SHOP)

        assert (from_shop.reason, from_shop.event_version) == (Reason.CONSENTED, 3)
        assert from_anyone.reason == Reason.PENDING_CONFIRMATION  # every sender: still waiting
        assert from_another.reason == Reason.PENDING_CONFIRMATION

    def test_a_withdrawal_with_nothing_granted_before_reads_withdrawn(
        self, ledger: ConsentLedger, check: Check
    ) -> None:
        ledger.opt_out(OptOut(business_id=BUSINESS, identifier=ADA, method="sms-keyword"))

        decision = check(category="offers")

        assert (decision.reason, decision.event_type) == (Reason.WITHDRAWN, "OptedOut")

    @pytest.mark.parametrize(
        ("policy", "reason"),
        [
            ("whatsapp-2025", Reason.TEMPLATE_CATEGORY_MISMATCH),
            ("whatsapp-2021", Reason.CONSENTED),
            ("consent-only", Reason.CONSENTED),
        ],
    )
    def test_a_template_category_mismatch_is_a_whatsapp_2025_rule(
        self, ledger: ConsentLedger, check: Check, policy: str, reason: Reason
    ) -> None:
        opt_in(ledger)

        decision = check(category="order-updates", template_category="MARKETING", policy=policy)

        assert decision.reason == reason
