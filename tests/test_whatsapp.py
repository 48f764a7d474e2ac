"""WhatsApp webhook bodies are read into typed signals; malformed items are reported by path.

The payloads in ``tests/payloads/whatsapp/`` are synthetic, written after the shapes Meta
documents (messages, statuses, user_preferences, template_category_update, BSUID fields),
with numbers from reserved ranges (+44 7700 900xxx, +1 202 555 01xx).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import TypeAdapter, ValidationError

from consent_ledger import Identifier, IdentifierKind
from consent_ledger.whatsapp.bodies import Position, read_payloads
from consent_ledger.whatsapp.keywords import KeywordKind, KeywordRule, Keywords, Match
from consent_ledger.whatsapp.parser import ParseResult, Problem, parse
from consent_ledger.whatsapp.signals import (
    AnySignal,
    CategoryUpdateStage,
    DeliveryError,
    DeliverySignal,
    InboundMessage,
    MarketingPreference,
    PreferenceAction,
    Signal,
    TemplateCategoryUpdate,
    WhatsAppUser,
)

PAYLOADS = Path(__file__).parent / "payloads" / "whatsapp"
WABA, WABA2 = "100200300400500", "100200300400777"
PHONE_NUMBER_ID, PHONE_NUMBER_ID2 = "110200345678901", "110200345678902"
ADA, BRUNO, CARLA, DAN = "447700900123", "447700900456", "12025550143", "12025550187"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def read(name: str, keywords: Keywords | None = None) -> ParseResult:
    return parse(load(name), keywords)


S = TypeVar("S", bound=Signal)


def only(result: ParseResult, kind: type[S]) -> S:
    assert result.problems == ()
    assert len(result.signals) == 1
    signal = result.signals[0]
    assert isinstance(signal, kind)
    return signal


def seconds(n: int) -> datetime:
    return datetime.fromtimestamp(T0.timestamp() + n, UTC)


class TestInboundKeywords:
    def test_stop(self) -> None:
        message = only(read("text_stop.json"), InboundMessage)

        assert message.keyword is not None
        assert (message.keyword.kind, message.keyword.word) == (KeywordKind.OPT_OUT, "stop")
        assert message.text == "STOP"
        assert message.message_type == "text"
        assert message.occurred_at == T0
        assert message.waba_id == WABA
        assert message.sender.phone_number_id == PHONE_NUMBER_ID
        assert message.sender.display_phone_number == "12025550100"
        assert message.user.wa_id == ADA
        assert message.user.phone == "+447700900123"
        assert message.message_id.startswith("wamid.HBgM")
        assert message.idempotency_key == f"message:{message.message_id}"
        assert message.path == "entry[0].changes[0].value.messages[0]"

    def test_stop_in_lower_case_with_spaces(self) -> None:
        message = only(read("text_stop_padded.json"), InboundMessage)

        assert message.text == "  Stop \n"
        assert message.keyword is not None
        assert message.keyword.kind is KeywordKind.OPT_OUT

    def test_localised_keyword(self) -> None:
        message = only(read("text_basta_italian.json"), InboundMessage)

        assert message.keyword is not None
        assert (message.keyword.word, message.keyword.language) == ("basta", "it")

    def test_start_after_stop_keeps_both_in_order(self) -> None:
        result = read("text_stop_then_start.json")

        kinds = [
            s.keyword.kind for s in result.signals if isinstance(s, InboundMessage) and s.keyword
        ]
        times = [s.occurred_at for s in result.signals if isinstance(s, InboundMessage)]
        assert kinds == [KeywordKind.OPT_OUT, KeywordKind.OPT_IN]
        assert times == [seconds(3600), seconds(7200)]

    def test_help_is_recorded_as_a_keyword(self) -> None:
        message = only(read("text_help.json"), InboundMessage)

        assert message.keyword is not None
        assert message.keyword.kind is KeywordKind.HELP

    def test_a_longer_message_is_only_a_possible_opt_out(self) -> None:
        message = only(read("text_longer_stop.json"), InboundMessage)

        assert message.keyword is not None
        assert message.keyword.kind is KeywordKind.POSSIBLE_OPT_OUT
        assert not message.keyword.automatic
        assert message.text == "Can you stop sending me offers please?"

    def test_a_message_that_is_no_keyword_still_counts_as_inbound(self) -> None:
        result = read("batched.json")

        photo = result.signals[1]
        assert isinstance(photo, InboundMessage)
        assert (photo.message_type, photo.keyword, photo.text) == ("image", None, None)


class TestButtons:
    def test_the_marketing_opt_out_button_withdraws_marketing_by_its_title(self) -> None:
        message = only(read("button_stop_promotions.json"), InboundMessage)

        assert message.message_type == "button"
        assert (message.text, message.button_payload) == ("Stop promotions", "STOP_PROMOTIONS")
        assert message.context_message_id is not None
        assert message.keyword is not None
        assert message.keyword.kind is KeywordKind.OPT_OUT
        assert message.keyword.matched_on is Match.TEXT
        assert message.keyword.categories is not None
        assert "offers" in message.keyword.categories

    def test_a_configured_payload_decides_before_the_title(self) -> None:
        keywords = Keywords.default().extended(
            [
                KeywordRule(
                    word="STOP_PROMOTIONS",
                    kind=KeywordKind.OPT_OUT,
                    match=Match.BUTTON,
                    categories=("offers",),
                )
            ]
        )

        message = only(read("button_stop_promotions.json", keywords), InboundMessage)

        assert message.keyword is not None
        assert message.keyword.matched_on is Match.BUTTON
        assert message.keyword.categories == ("offers",)
        assert message.keyword.version == keywords.version

    def test_an_interactive_reply_is_classified_by_its_id(self) -> None:
        keywords = Keywords.default().extended(
            [KeywordRule(word="unsubscribe-offers", kind=KeywordKind.OPT_OUT, match=Match.BUTTON)]
        )

        unconfigured = only(read("interactive_unsubscribe_offers.json"), InboundMessage)
        configured = only(read("interactive_unsubscribe_offers.json", keywords), InboundMessage)

        assert (unconfigured.text, unconfigured.button_payload) == (
            "No more offers",
            "unsubscribe-offers",
        )
        assert unconfigured.keyword is None
        assert configured.keyword is not None
        assert configured.keyword.kind is KeywordKind.OPT_OUT


class TestMarketingPreferences:
    @pytest.mark.parametrize(
        ("name", "action", "at"),
        [
            ("user_preferences_stop.json", PreferenceAction.STOP, seconds(400)),
            ("user_preferences_resume.json", PreferenceAction.RESUME, seconds(86400)),
        ],
    )
    def test_stop_and_resume(self, name: str, action: PreferenceAction, at: datetime) -> None:
        preference = only(read(name), MarketingPreference)

        assert preference.action is action
        assert preference.stopped is (action is PreferenceAction.STOP)
        assert preference.category == "marketing_messages"
        assert preference.occurred_at == at
        assert preference.user.wa_id == ADA
        assert preference.sender.phone_number_id == PHONE_NUMBER_ID
        assert preference.detail is not None
        assert preference.detail.startswith("User requested to")
        assert preference.idempotency_key.startswith("user_preferences:")
        assert len(preference.idempotency_key.removeprefix("user_preferences:")) == 64

    def test_stop_and_resume_have_different_keys(self) -> None:
        stop = only(read("user_preferences_stop.json"), MarketingPreference)
        resume = only(read("user_preferences_resume.json"), MarketingPreference)

        assert stop.idempotency_key != resume.idempotency_key

    def test_the_system_message_form_is_read_too(self) -> None:
        preference = only(read("system_user_preference.json"), MarketingPreference)

        assert preference.action is PreferenceAction.STOP
        assert preference.message_id is not None
        assert preference.idempotency_key == f"message:{preference.message_id}"
        assert preference.user.phone == "+447700900456"

    def test_other_preference_categories_are_ignored(self) -> None:
        body = load("user_preferences_stop.json")
        body["entry"][0]["changes"][0]["value"]["user_preferences"][0]["category"] = "calls"

        result = parse(body)

        assert (result.signals, result.problems) == ((), ())
        assert "preference category 'calls'" in result.ignored[0].reason


class TestDeliveryErrors:
    @pytest.mark.parametrize(
        ("code", "recipient", "kind", "marketing_stop", "inferred_block"),
        [
            (131050, ADA, DeliverySignal.MARKETING_STOPPED, True, False),
            (131049, BRUNO, DeliverySignal.MARKETING_LIMIT, False, False),
            (131047, CARLA, DeliverySignal.OUTSIDE_SERVICE_WINDOW, False, False),
            (131026, DAN, DeliverySignal.UNDELIVERABLE, False, True),
        ],
    )
    def test_codes(
        self,
        code: int,
        recipient: str,
        kind: DeliverySignal,
        marketing_stop: bool,  # noqa: FBT001 (a parameter of the table)
        inferred_block: bool,  # noqa: FBT001
    ) -> None:
        error = only(read(f"status_{code}.json"), DeliveryError)

        assert (error.code, error.kind, error.status) == (code, kind, "failed")
        assert error.platform_marketing_stop is marketing_stop
        assert error.inferred_block is inferred_block
        assert error.recipient.wa_id == recipient
        assert error.recipient.phone is None  # a status names the WhatsApp id only
        assert error.occurred_at == seconds(500)
        assert error.title
        assert error.details
        assert error.idempotency_key == f"status:{error.message_id}:failed:{code}"

    def test_statuses_without_errors_are_ignored(self) -> None:
        result = read("batched.json")

        assert result.ignored[0].path == "entry[0].changes[1].value.statuses[0]"
        assert "status 'delivered'" in result.ignored[0].reason


class TestTemplateCategoryUpdates:
    def test_impending(self) -> None:
        update = only(read("template_category_update_impending.json"), TemplateCategoryUpdate)

        assert update.stage is CategoryUpdateStage.IMPENDING
        # Meta's "new_category" is the current one in an impending notice.
        assert (update.previous_category, update.new_category) == ("UTILITY", "MARKETING")
        assert update.effective_at == seconds(86400)
        assert update.occurred_at == seconds(600)
        assert (update.template_id, update.template_name, update.template_language) == (
            "278077987957091",
            "order_shipped_with_offer",
            "en_US",
        )
        assert update.path == "entry[0].changes[0]"

    def test_completed(self) -> None:
        update = only(read("template_category_update_completed.json"), TemplateCategoryUpdate)

        assert update.stage is CategoryUpdateStage.COMPLETED
        assert (update.previous_category, update.new_category) == ("UTILITY", "MARKETING")
        assert update.effective_at is None
        assert update.occurred_at == seconds(86400 + 600)

    def test_impending_and_completed_have_different_keys(self) -> None:
        impending = only(read("template_category_update_impending.json"), TemplateCategoryUpdate)
        completed = only(read("template_category_update_completed.json"), TemplateCategoryUpdate)

        assert impending.idempotency_key != completed.idempotency_key


class TestBatches:
    def test_two_entries_with_several_changes(self) -> None:
        result = read("batched.json")

        assert result.ok
        assert [(type(s).__name__, s.path) for s in result.signals] == [
            ("InboundMessage", "entry[0].changes[0].value.messages[0]"),
            ("InboundMessage", "entry[0].changes[0].value.messages[1]"),
            ("DeliveryError", "entry[0].changes[1].value.statuses[1]"),
            ("MarketingPreference", "entry[0].changes[2].value.user_preferences[0]"),
            ("InboundMessage", "entry[1].changes[0].value.messages[0]"),
            ("TemplateCategoryUpdate", "entry[1].changes[1]"),
        ]
        assert [i.path for i in result.ignored] == [
            "entry[0].changes[1].value.statuses[0]",
            "entry[1].changes[2]",
        ]
        second = result.signals[4]
        assert isinstance(second, InboundMessage)
        assert (second.waba_id, second.sender.phone_number_id) == (WABA2, PHONE_NUMBER_ID2)

    def test_a_redelivered_body_gives_the_same_keys(self) -> None:
        first, again = read("batched.json"), read("batched.json")

        assert [s.idempotency_key for s in first.signals] == [
            s.idempotency_key for s in again.signals
        ]
        assert len({s.idempotency_key for s in first.signals}) == len(first.signals)

    def test_the_same_message_twice_in_a_body_has_one_key(self) -> None:
        result = read("duplicate_in_body.json")

        first, second = result.signals
        assert first.idempotency_key == second.idempotency_key
        assert first.path != second.path

    def test_out_of_order_timestamps_are_kept_as_given(self) -> None:
        result = read("out_of_order.json")

        signals = [s for s in result.signals if isinstance(s, InboundMessage)]
        assert [s.text for s in signals] == ["START", "STOP"]
        assert [s.occurred_at for s in signals] == [seconds(9000), seconds(8000)]

    def test_unknown_fields_are_ignored(self) -> None:
        result = read("unknown_fields.json")

        assert result.ok
        assert result.ignored == ()
        unsubscribe, hologram = result.signals
        assert isinstance(unsubscribe, InboundMessage)
        assert unsubscribe.keyword is not None
        assert unsubscribe.keyword.kind is KeywordKind.OPT_OUT
        assert isinstance(hologram, InboundMessage)
        assert (hologram.message_type, hologram.keyword) == ("hologram", None)


class TestMalformed:
    def test_each_problem_names_where_it_is_and_the_rest_still_parses(self) -> None:
        result = read("malformed.json")

        assert [str(p) for p in result.problems] == [
            "entry[0].changes[0].value.messages[0]: no 'from' or 'from_user_id': whose is it?",
            (
                "entry[0].changes[0].value.messages[2]: "
                "'timestamp' is not a Unix time in seconds: 'yesterday'"
            ),
            "entry[0].changes[0].value.messages[3].text: no 'body'",
            "entry[0].changes[0].value.messages[4]: expected an object, got a string",
            "entry[0].changes[1]: no 'value'",
            "entry[0].changes[2].value.statuses[0].errors[0]: no 'code'",
            (
                "entry[0].changes[3].value.user_preferences[0]: "
                "'value' is 'maybe': expected 'stop' or 'resume'"
            ),
            "entry[0].changes[4].value: no 'metadata'",
            "entry[1]: no 'id'",
            (
                "entry[2].changes[1].value: neither 'previous_category' (a completed change) "
                "nor 'correct_category' (an impending one)"
            ),
        ]
        assert [s.path for s in result.signals] == [
            "entry[0].changes[0].value.messages[1]",
            "entry[0].changes[2].value.statuses[1]",
            "entry[0].changes[3].value.user_preferences[1]",
            "entry[2].changes[0]",
        ]
        assert not result.ok

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ([], "not a webhook body: expected a JSON object, got an array"),
            ({"object": "page", "entry": []}, "object: expected 'whatsapp_business_account'"),
            ({"object": "whatsapp_business_account"}, "no 'entry'"),
            ({"object": "whatsapp_business_account", "entry": {}}, "'entry' is an object, not"),
        ],
    )
    def test_a_malformed_envelope_is_one_problem(self, body: object, problem: str) -> None:
        result = parse(body)

        assert result.signals == ()
        assert len(result.problems) == 1
        assert str(result.problems[0]).startswith(problem)

    def test_an_identifier_that_is_none_is_a_problem(self) -> None:
        body = load("text_stop.json")
        value = body["entry"][0]["changes"][0]["value"]
        value["messages"][0]["from"] = "not-a-number"
        value["contacts"] = []

        result = parse(body)

        assert result.signals == ()
        assert "is not a WhatsApp id" in str(result.problems[0])


class TestIdentity:
    def test_a_payload_with_several_identifiers_links_them(self) -> None:
        first, second = read("bsuid.json").signals

        assert isinstance(first, InboundMessage)
        # The contact's wa_id differs from the number in 'from': both are kept.
        assert first.user.identifiers() == (
            Identifier(IdentifierKind.PHONE, "+12025550187"),
            Identifier(IdentifierKind.WA, "12025550188"),
            Identifier(IdentifierKind.BSUID, "US.1349120865530274"),
        )
        assert isinstance(second, InboundMessage)
        assert second.user.identifiers() == (
            Identifier(IdentifierKind.BSUID, "GB.1502576394655843"),
            Identifier(IdentifierKind.BSUID, "GB.ENT.3344556677"),
        )
        assert second.keyword is not None
        assert second.keyword.kind is KeywordKind.OPT_OUT

    def test_a_user_needs_a_wa_id_or_a_bsuid(self) -> None:
        with pytest.raises(ValidationError, match="needs a wa_id or a business-scoped user id"):
            WhatsAppUser(phone="+447700900123")


class TestEvidence:
    @pytest.mark.parametrize(
        "name",
        sorted(p.name for p in PAYLOADS.glob("*.json") if not p.name.startswith("bodies")),
    )
    def test_evidence_is_a_body_that_reads_back_to_the_same_signal(self, name: str) -> None:
        for signal in read(name).signals:
            again = parse(json.loads(signal.evidence))

            assert again.ok
            same = [s for s in again.signals if s.idempotency_key == signal.idempotency_key]
            assert len(same) == 1
            assert same[0].model_copy(update={"path": signal.path}) == signal

    def test_evidence_holds_no_one_else(self) -> None:
        ada_stop = read("batched.json").signals[0]

        assert ADA in ada_stop.evidence
        assert BRUNO not in ada_stop.evidence
        assert CARLA not in ada_stop.evidence

    def test_signals_round_trip_through_json(self) -> None:
        adapter: TypeAdapter[AnySignal] = TypeAdapter(AnySignal)
        signals = [
            *read("batched.json").signals,
            *read("template_category_update_impending.json").signals,
        ]

        for signal in signals:
            assert adapter.validate_json(adapter.dump_json(signal)) == signal


class TestReadPayloads:
    def test_json_lines_report_each_line(self) -> None:
        with (PAYLOADS / "bodies.jsonl").open(encoding="utf-8") as lines:
            read_back = list(read_payloads(lines))

        positions = [position for position, _ in read_back]
        problems = {str(p): str(item) for p, item in read_back if isinstance(item, Problem)}
        assert positions == [Position(1), Position(2), Position(4), Position(5), Position(6)]
        assert problems == {
            "line 2": "not JSON: Expecting value (column 51)",
            "line 6": "not a webhook body: expected a JSON object, got an array",
        }
        bodies = [item for _, item in read_back if isinstance(item, dict)]
        stop_again = [parse(b).signals[0].idempotency_key for b in bodies]
        assert stop_again[0] == stop_again[2]  # the same body twice: a duplicate

    def test_a_json_array_reports_items(self) -> None:
        with (PAYLOADS / "bodies_array.json").open(encoding="utf-8") as lines:
            read_back = list(read_payloads(lines))

        assert [str(position) for position, _ in read_back] == [
            "item 0 (line 2)",
            "item 1 (line 41)",
            "item 2 (line 78)",
        ]
        assert all(isinstance(item, dict) for _, item in read_back)

    def test_a_broken_array_item_ends_the_array_with_its_position(self) -> None:
        with (PAYLOADS / "bodies_array_broken.json").open(encoding="utf-8") as lines:
            read_back = list(read_payloads(lines))

        good = [p for p, item in read_back if isinstance(item, dict)]
        (position, problem) = read_back[-1]
        assert good == [Position(2, 0), Position(41, 1)]
        assert position.item == 2
        assert isinstance(problem, Problem)
        assert problem.message.startswith("not JSON: Invalid control character")
        assert problem.message.endswith("the rest of the array cannot be read")

    def test_a_single_pretty_printed_body(self) -> None:
        with (PAYLOADS / "text_stop.json").open(encoding="utf-8") as lines:
            read_back = list(read_payloads(lines))

        assert len(read_back) == 1
        position, body = read_back[0]
        assert position == Position(1)
        assert body == load("text_stop.json")

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", []),
            ("\n\n", []),
            ("[]", []),
            ("[\n]\n", []),
            ('{"a": NaN}\n', ["line 1: not JSON: NaN is not a JSON number"]),
            (
                "[{}] x",
                ["item 0 (line 1): ok", "line 1: not JSON: text after the end of the array"],
            ),
            ("[{} {}]", ["item 0 (line 1): ok", "item 1 (line 1): not JSON: expected ',' or ']'"]),
            ("[{},", ["item 0 (line 1): ok", "item 1 (line 1): not JSON: Expecting value"]),
            ("\ufeff{}\n{}", ["line 1: ok", "line 2: ok"]),
        ],
    )
    def test_edge_cases(self, text: str, expected: list[str]) -> None:
        read_back = [
            f"{position}: {'ok' if isinstance(item, dict) else item}"
            for position, item in read_payloads(io.StringIO(text))
        ]

        assert len(read_back) == len(expected)
        for line, start in zip(read_back, expected, strict=True):
            assert line.startswith(start)
