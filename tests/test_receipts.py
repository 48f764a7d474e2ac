"""Consent receipts in the Kantara v1.1 shape: what an auditor checks, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from consent_ledger import (
    ChangeCategories,
    ConfirmOptIn,
    ConsentLedger,
    Identifier,
    InvalidInputError,
    Method,
    OptIn,
    OptOut,
    PublishNotice,
    RecordPlatformPreference,
    SubjectNotFoundError,
)
from consent_ledger.model.values import Provenance
from consent_ledger.reports.receipts import receipt, receipts

from .conftest import BUSINESS, BUSINESS_NAME

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

ADA = "+447700900123"
BRUNO = "+12025550143"
# A past moment with microseconds, so that rounding to Kantara's whole seconds shows.
OCCURRED = (datetime.now(UTC) - timedelta(days=30)).replace(microsecond=654321)
EXTENSION = "x-consent-ledger"

# The Kantara Consent Receipt v1.1 JSON schema's required fields
# (KantaraInitiative/consent-receipt-v-next, CR_v1_1/kantara-consent-receipt-v1_1-schema.json).
REQUIRED = {
    "version": str,
    "jurisdiction": str,
    "consentTimestamp": int,
    "collectionMethod": str,
    "consentReceiptID": str,
    "piiPrincipalId": str,
    "piiControllers": list,
    "policyUrl": str,
    "services": list,
    "sensitive": bool,
    "spiCat": list,
}
OPTIONAL = {"publicKey", "language"}
CONTROLLER_REQUIRED = {
    "piiController": str,
    "contact": str,
    "address": dict,
    "email": str,
    "phone": str,
}
PURPOSE_REQUIRED = {
    "consentType": str,
    "purposeCategory": list,
    "piiCategory": list,
    "termination": str,
    "thirdPartyDisclosure": bool,
}


def kantara_problems(data: dict[str, Any]) -> list[str]:
    """What in ``data`` breaks the v1.1 schema's required fields and types."""
    problems = _missing(data, REQUIRED, "")
    problems += [f"unexpected key {k}" for k in set(data) - set(REQUIRED) - OPTIONAL - {EXTENSION}]
    for i, controller in enumerate(data.get("piiControllers", [])):
        problems += _missing(controller, CONTROLLER_REQUIRED, f"piiControllers[{i}].")
    for i, service in enumerate(data.get("services", [])):
        problems += _missing(service, {"service": str, "purposes": list}, f"services[{i}].")
        for j, purpose in enumerate(service.get("purposes", [])):
            where = f"services[{i}].purposes[{j}]."
            problems += _missing(purpose, PURPOSE_REQUIRED, where)
            if purpose.get("thirdPartyDisclosure") and "thirdPartyName" not in purpose:
                problems.append(f"{where}thirdPartyName missing")
            lists = purpose.get("purposeCategory", []) + purpose.get("piiCategory", [])
            problems += [
                f"{where} holds a non-string category" for c in lists if type(c) is not str
            ]
    return problems


def _missing(data: dict[str, Any], fields: Mapping[str, type], where: str) -> list[str]:
    # type() is, not isinstance: a bool is not the integer consentTimestamp must be.
    return [
        f"{where}{name} missing or not {kind.__name__}"
        for name, kind in fields.items()
        if type(data.get(name)) is not kind
    ]


def utc(moment: datetime) -> str:
    """A time as receipts write it in the extension."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def opt_in(**fields: Any) -> OptIn:
    values: dict[str, Any] = {
        "business_id": BUSINESS,
        "identifier": ADA,
        "categories": ("offers",),
        "notice": "whatsapp-optin@1",
        "method": "web-form",
        "occurred_at": OCCURRED,
    }
    return OptIn(**(values | fields))


def confirm(**fields: Any) -> ConfirmOptIn:
    values: dict[str, Any] = {
        "business_id": BUSINESS,
        "identifier": ADA,
        "categories": ("offers",),
        "method": "email-link",
        "occurred_at": OCCURRED + timedelta(minutes=5),
    }
    return ConfirmOptIn(**(values | fields))


def ada_receipts(ledger: ConsentLedger, **options: Any) -> list[dict[str, Any]]:
    return receipts(ledger, ADA, business_id=BUSINESS, **options)


def only_receipt(ledger: ConsentLedger, **options: Any) -> dict[str, Any]:
    [found] = ada_receipts(ledger, **options)
    return found


def publish_web_notice(ledger: ConsentLedger, version: int) -> None:
    """Publish version ``version`` of notice web-optin, with a policy URL of its own."""
    ledger.publish_notice(
        PublishNotice(
            business_id=BUSINESS,
            notice_id="web-optin",
            language="en-GB",
            categories=("offers", "order-updates"),
            text=f"Acme Outfitters may send me offers on WhatsApp (wording {version}).",
            policy_url=f"https://acme.example/privacy/v{version}",
        )
    )


class TestKantaraShape:
    def test_every_required_field_is_there_with_its_type(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(categories=("offers", "order-updates")))

        data = only_receipt(ledger)

        assert kantara_problems(data) == []
        assert kantara_problems(data | {"consentTimestamp": True}) == [
            "consentTimestamp missing or not int"  # the check itself can fail
        ]
        assert data["version"] == "KI-CR-v1.1.0"
        assert data["sensitive"] is False
        assert data["spiCat"] == []

    def test_the_receipt_is_json(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        data = only_receipt(ledger)

        assert json.loads(json.dumps(data)) == data

    def test_language_is_the_notices_as_iso_639_1(self, ledger: ConsentLedger) -> None:
        publish_web_notice(ledger, 1)
        ledger.opt_in(opt_in(notice="web-optin@1"))

        data = only_receipt(ledger)

        assert data["language"] == "en"
        assert data[EXTENSION]["notice_language"] == "en-GB"

    def test_one_service_per_channel_and_sender(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(notice="sms-optin", channel="sms", sender="acme-uk"))

        [service] = only_receipt(ledger)["services"]

        assert service["service"] == f"SMS messages from {BUSINESS_NAME} (sender acme-uk)"


class TestWhatTheReceiptRecords:
    def test_the_timestamp_is_when_the_opt_in_occurred(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        data = only_receipt(ledger)

        assert data["consentTimestamp"] == int(OCCURRED.replace(microsecond=0).timestamp())
        assert datetime.fromtimestamp(data["consentTimestamp"], UTC) == OCCURRED.replace(
            microsecond=0
        )
        assert data[EXTENSION]["occurred_at"] == utc(OCCURRED)
        assert data[EXTENSION]["recorded_at"] > data[EXTENSION]["occurred_at"]

    def test_the_purposes_are_the_categories_granted(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(categories=("order-updates", "offers")))

        data = only_receipt(ledger)

        purposes = data["services"][0]["purposes"]
        assert data[EXTENSION]["categories"] == ["offers", "order-updates"]
        assert [p["purpose"] for p in purposes] == [
            "Offers and promotions (offers)",
            "Order status, shipping and delivery (order-updates)",
        ]
        assert [p["purposeCategory"] for p in purposes] == [
            ["6 - Marketing"],
            ["2 - Contracted Service"],
        ]
        assert {p["consentType"] for p in purposes} == {"EXPLICIT"}

    def test_the_notice_is_the_version_the_person_saw(self, ledger: ConsentLedger) -> None:
        publish_web_notice(ledger, 1)
        ledger.opt_in(opt_in(notice="web-optin@1"))
        publish_web_notice(ledger, 2)  # a newer wording, after the opt-in

        data = only_receipt(ledger)

        seen = ledger.get_notice(BUSINESS, "web-optin", 1)
        assert data["policyUrl"] == "https://acme.example/privacy/v1"
        assert data[EXTENSION]["notice"] == "web-optin@1"
        assert data[EXTENSION]["notice_hash"] == seen.content_hash
        assert seen.content_hash != ledger.get_notice(BUSINESS, "web-optin", 2).content_hash
        assert data["piiControllers"][0]["piiController"] == seen.business_name

    def test_how_where_and_by_whom_is_the_collection_method(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(method="paper", collection_point="shop-milano", actor="operator:ada"))

        data = only_receipt(ledger)

        assert data["collectionMethod"] == "paper at shop-milano by operator:ada"
        assert (data[EXTENSION]["method"], data[EXTENSION]["actor"]) == ("paper", "operator:ada")

    def test_jurisdiction_and_legal_basis_of_the_grant(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(jurisdiction="GB", legal_basis="soft-opt-in"))

        data = only_receipt(ledger)

        assert data["jurisdiction"] == "GB"
        assert data["services"][0]["purposes"][0]["consentType"] == "IMPLICIT"
        assert data[EXTENSION]["legal_basis"] == "soft-opt-in"
        assert "jurisdiction" not in data[EXTENSION]["not_recorded"]

    def test_an_expiry_is_the_termination(self, ledger: ConsentLedger) -> None:
        expires = datetime(2027, 5, 24, tzinfo=UTC)
        ledger.opt_in(opt_in(expires_at=expires))

        data = only_receipt(ledger)

        [purpose] = data["services"][0]["purposes"]
        assert "2027-05-24T00:00:00.000000Z" in purpose["termination"]
        assert data[EXTENSION]["expires_at"] == "2027-05-24T00:00:00.000000Z"

    def test_without_an_expiry_an_opt_out_ends_it(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        [purpose] = only_receipt(ledger)["services"][0]["purposes"]

        assert purpose["termination"] == "when the person opts out"

    def test_what_the_ledger_lacks_is_said_not_invented(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        data = only_receipt(ledger)

        assert data["piiControllers"] == [
            {
                "piiController": BUSINESS_NAME,
                "contact": "not recorded",
                "address": {},
                "email": "not recorded",
                "phone": "not recorded",
            }
        ]
        assert data["jurisdiction"] == "not recorded"
        assert data["policyUrl"] == "not recorded"
        assert data[EXTENSION]["not_recorded"] == [
            "jurisdiction",
            "piiControllers[0].contact",
            "piiControllers[0].address",
            "piiControllers[0].email",
            "piiControllers[0].phone",
            "policyUrl",
            "services[0].purposes[*].thirdPartyDisclosure",
        ]
        assert "publicKey" not in data

    def test_the_extension_ties_the_receipt_to_the_log(self, ledger: ConsentLedger) -> None:
        recorded = ledger.opt_in(opt_in())

        extension = only_receipt(ledger)[EXTENSION]

        assert extension["ledger_id"] == ledger.event_log.ledger_id
        assert extension["subject_id"] == str(recorded.subject_id)
        assert (extension["event_version"], extension["event_type"]) == (2, "OptedIn")
        assert extension["business_id"] == BUSINESS


class TestWhichEventsGetAReceipt:
    def test_one_per_grant_oldest_first(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())
        ledger.opt_out(OptOut(business_id=BUSINESS, identifier=ADA, method="whatsapp-thread"))
        ledger.record_platform_preference(
            RecordPlatformPreference(business_id=BUSINESS, identifier=ADA, stopped=True)
        )
        ledger.opt_in(opt_in(categories=("order-updates",), occurred_at=datetime.now(UTC)))

        found = ada_receipts(ledger)

        assert [r[EXTENSION]["event_version"] for r in found] == [2, 5]

    def test_a_change_that_grants_has_one(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())
        ledger.change_categories(
            ChangeCategories(
                business_id=BUSINESS,
                identifier=ADA,
                grant=("recommendations",),
                withdraw=("offers",),
                notice="whatsapp-optin@2",
                method="whatsapp-thread",
            )
        )

        change = ada_receipts(ledger)[1]

        assert change[EXTENSION]["event_type"] == "CategoriesChanged"
        assert change[EXTENSION]["categories"] == ["recommendations"]
        assert change[EXTENSION]["withdrawn"] == ["offers"]
        assert change[EXTENSION]["notice"] == "whatsapp-optin@2"
        assert kantara_problems(change) == []

    def test_a_change_that_only_withdraws_has_none(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())
        ledger.change_categories(
            ChangeCategories(
                business_id=BUSINESS, identifier=ADA, withdraw=("offers",), method="web-form"
            )
        )

        assert len(ada_receipts(ledger)) == 1

    def test_an_unknown_person_is_an_error(self, ledger: ConsentLedger) -> None:
        with pytest.raises(SubjectNotFoundError, match="no consent record for"):
            ada_receipts(ledger)


class TestReceiptId:
    def test_the_same_event_always_has_the_same_id(
        self, ledger_at: tuple[ConsentLedger, str, Path | None]
    ) -> None:
        ledger, db, key_file = ledger_at
        ledger.opt_in(opt_in())
        first = only_receipt(ledger)["consentReceiptID"]

        reopened = ConsentLedger.open(db, key_file=key_file)
        try:
            again = only_receipt(reopened)["consentReceiptID"]
            revealed = only_receipt(reopened, reveal=True)["consentReceiptID"]
        finally:
            reopened.close()

        assert first == again == revealed
        assert uuid.UUID(first).version == 5

    def test_each_event_has_its_own(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())
        ledger.opt_in(opt_in())  # a repeated opt-in is new evidence, with a receipt of its own
        ledger.opt_in(opt_in(identifier=BRUNO))

        ids = [r["consentReceiptID"] for r in ada_receipts(ledger)]
        ids += [r["consentReceiptID"] for r in receipts(ledger, BRUNO, business_id=BUSINESS)]

        assert len(set(ids)) == 3


class TestPrincipal:
    def test_the_subject_id_names_the_person_by_default(self, ledger: ConsentLedger) -> None:
        recorded = ledger.opt_in(opt_in())

        data = only_receipt(ledger)

        assert data["piiPrincipalId"] == str(recorded.subject_id)
        assert data[EXTENSION]["pii_principal_id"] == "subject-id"
        text = json.dumps(data)
        assert ADA not in text
        assert "7700900123" not in text

    def test_reveal_names_the_person_by_their_identifier(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        data = only_receipt(ledger, reveal=True)

        assert data["piiPrincipalId"] == ADA
        assert data[EXTENSION]["pii_principal_id"] == "identifier"

    def test_an_identifier_other_than_a_phone_keeps_its_kind(self, ledger: ConsentLedger) -> None:
        ledger.publish_notice(
            PublishNotice(
                business_id=BUSINESS,
                notice_id="email-optin",
                language="en",
                channel="email",
                categories=("newsletters",),
                text="Acme Outfitters may e-mail me its newsletter.",
            )
        )
        ledger.opt_in(
            opt_in(
                identifier="email:ada@example.com",
                channel="email",
                categories=("newsletters",),
                notice="email-optin",
            )
        )

        [data] = receipts(ledger, "email:Ada@Example.com", business_id=BUSINESS, reveal=True)

        assert data["piiPrincipalId"] == "email:ada@example.com"
        assert data["services"][0]["service"] == f"E-mail messages from {BUSINESS_NAME}"

    def test_a_person_found_by_a_linked_identifier_is_named_as_registered(
        self, ledger: ConsentLedger
    ) -> None:
        ledger.opt_in(opt_in())
        ledger.link_identifiers(
            BUSINESS,
            [Identifier.parse(ADA), Identifier.parse("wa:447700900123")],
            provenance=Provenance(
                method=Method.PLATFORM, actor="whatsapp", occurred_at=datetime.now(UTC)
            ),
        )

        [data] = receipts(ledger, "wa:447700900123", business_id=BUSINESS, reveal=True)

        assert data["piiPrincipalId"] == ADA


class TestDoubleOptIn:
    def test_a_single_opt_in_says_nothing_of_confirmation(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        data = only_receipt(ledger)

        assert data[EXTENSION]["double_opt_in"] is None
        assert "double opt-in" not in data["collectionMethod"]

    def test_an_unconfirmed_opt_in_says_so(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(awaiting_confirmation=True))

        data = only_receipt(ledger)

        assert data["collectionMethod"] == "web-form; double opt-in, not confirmed"
        assert data[EXTENSION]["double_opt_in"] == {
            "confirmed": False,
            "unconfirmed_categories": ["offers"],
            "confirmations": [],
        }

    def test_a_confirmed_opt_in_says_when_and_how(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(awaiting_confirmation=True, collection_point="checkout"))
        confirmed = ledger.confirm_opt_in(confirm())

        data = only_receipt(ledger)  # the confirmation has no receipt of its own

        assert data["collectionMethod"] == (
            "web-form at checkout; double opt-in, confirmed (event #3)"
        )
        assert data["consentTimestamp"] == int(OCCURRED.replace(microsecond=0).timestamp())
        double = data[EXTENSION]["double_opt_in"]
        assert (double["confirmed"], double["unconfirmed_categories"]) == (True, [])
        [confirmation] = double["confirmations"]
        assert confirmation["event_version"] == confirmed.version == 3
        assert confirmation["event_type"] == "OptInConfirmed"
        assert confirmation["method"] == "email-link"
        assert confirmation["categories"] == ["offers"]
        assert confirmation["occurred_at"] == utc(OCCURRED + timedelta(minutes=5))

    def test_a_partial_confirmation_names_what_is_unconfirmed(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(categories=("offers", "order-updates"), awaiting_confirmation=True))
        ledger.confirm_opt_in(confirm(categories=("order-updates",)))

        data = only_receipt(ledger)

        assert data["collectionMethod"].endswith(
            "double opt-in, partly confirmed (event #3); not confirmed: offers"
        )
        double = data[EXTENSION]["double_opt_in"]
        assert (double["confirmed"], double["unconfirmed_categories"]) == (False, ["offers"])
        assert [c["categories"] for c in double["confirmations"]] == [["order-updates"]]

    def test_a_confirmation_belongs_to_the_opt_in_it_confirmed(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(awaiting_confirmation=True))
        ledger.opt_out(
            OptOut(
                business_id=BUSINESS,
                identifier=ADA,
                method="whatsapp-thread",
                occurred_at=OCCURRED + timedelta(minutes=1),
            )
        )
        ledger.opt_in(
            opt_in(awaiting_confirmation=True, occurred_at=OCCURRED + timedelta(minutes=2))
        )
        ledger.confirm_opt_in(confirm())

        first, second = ada_receipts(ledger)

        assert first[EXTENSION]["double_opt_in"]["confirmed"] is False
        assert second[EXTENSION]["double_opt_in"]["confirmed"] is True
        assert second[EXTENSION]["event_version"] == 4


class TestOneReceipt:
    def test_is_the_receipt_of_that_event(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())
        ledger.opt_in(opt_in(categories=("order-updates",)))

        data = receipt(ledger, ADA, business_id=BUSINESS, version=3)

        assert data == ada_receipts(ledger)[1]

    def test_reveal_works_on_one_receipt_too(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        data = receipt(ledger, ADA, business_id=BUSINESS, version=2, reveal=True)

        assert data["piiPrincipalId"] == ADA

    def test_an_event_that_is_not_there_is_an_error(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        with pytest.raises(InvalidInputError, match=r"has no event #9 \(its events are #1 to #2\)"):
            receipt(ledger, ADA, business_id=BUSINESS, version=9)

    def test_an_event_that_grants_nothing_is_an_error(self, ledger: ConsentLedger) -> None:
        ledger.opt_out(OptOut(business_id=BUSINESS, identifier=ADA, method="whatsapp-thread"))

        with pytest.raises(InvalidInputError, match=r"event #2 \(OptedOut\) grants no consent"):
            receipt(ledger, ADA, business_id=BUSINESS, version=2)

    def test_a_confirmation_points_to_its_opt_in(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(awaiting_confirmation=True))
        ledger.confirm_opt_in(confirm())

        with pytest.raises(InvalidInputError, match=r"receipt of the opt-in it confirms \(#2\)"):
            receipt(ledger, ADA, business_id=BUSINESS, version=3)
