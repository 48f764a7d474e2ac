"""WhatsApp webhooks into the ledger: what each item records, exactly once, on both stores."""

from __future__ import annotations

import base64
import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from consent_ledger.projections import ConsentStatusView, catch_up, open_view_database
from hypothesis import given, settings
from hypothesis import strategies as st

from consent_ledger import ConsentLedger, OptIn
from consent_ledger.exceptions import BusinessNotFoundError, InvalidInputError
from consent_ledger.model.status import State
from consent_ledger.whatsapp.ingestion import ingest_whatsapp_lines
from consent_ledger.whatsapp.parser import parse

from .conftest import BUSINESS, StoreFactory, new_ledger

if TYPE_CHECKING:
    from consent_ledger.model.history import SubjectHistory

PAYLOADS = Path(__file__).parent / "payloads" / "whatsapp"
ADA = "+447700900123"
BRUNO = "+12025550143"
CARLA = "+447700900456"
SENDER = "110200345678901"  # the business number the fixtures' messages reach


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def opt_in(ledger: ConsentLedger, number: str = ADA) -> None:
    """The person opted in to WhatsApp offers and order updates on 1 October."""
    ledger.opt_in(
        OptIn(
            business_id=BUSINESS,
            identifier=number,
            categories=("offers", "order-updates"),
            notice="whatsapp-optin@1",
            method="web-form",
            occurred_at=datetime(2026, 10, 1, 9, tzinfo=UTC),
        )
    )


def whatsapp_state(ledger: ConsentLedger, number: str = ADA) -> State:
    """The person's consent to WhatsApp offers."""
    status = ledger.get_status(number, business_id=BUSINESS)
    [offers] = [c for c in status.consents if c.channel == "whatsapp" and c.category == "offers"]
    return offers.state


def history(ledger: ConsentLedger, number: str = ADA) -> SubjectHistory:
    return ledger.get_history(number, business_id=BUSINESS)


NOT_CONSENT = {"SubjectRegistered", "IdentifierLinked", "SignalReceived"}


def consent_events(ledger: ConsentLedger, number: str = ADA) -> list[str]:
    """The person's events that are about consent (not who they are, not signals)."""
    return [
        e.event_type for e in history(ledger, number).entries if e.event_type not in NOT_CONSENT
    ]


def signals(ledger: ConsentLedger, number: str = ADA) -> list[str]:
    """The events that keep what the platform reported (evidence, not consent)."""
    return [
        e.event_type for e in history(ledger, number).entries if e.event_type == "SignalReceived"
    ]


@pytest.fixture
def ada(ledger: ConsentLedger) -> ConsentLedger:
    opt_in(ledger)
    return ledger


# Opt-out and opt-in keywords.


def test_stop_opts_the_person_out_with_the_item_as_sealed_evidence(ada: ConsentLedger) -> None:
    report = ada.ingest_whatsapp(payload("text_stop.json"), business_id=BUSINESS)

    assert (report.accepted, report.changes, report.duplicates, report.rejected) == (1, 1, 0, [])
    assert report.outcomes[0].action == "opted-out"
    assert whatsapp_state(ada) is State.WITHDRAWN
    [last] = [e for e in history(ada).entries if e.event_type == "OptedOut"]
    assert (last.method, last.actor) == ("whatsapp-thread", "subject")
    assert last.evidence is not None
    assert last.evidence.content is not None
    evidence = json.loads(base64.b64decode(last.evidence.content))
    [change] = evidence["entry"][0]["changes"]
    assert change["value"]["messages"][0]["text"]["body"] == "STOP"


def test_the_same_webhook_twice_records_once(ada: ConsentLedger) -> None:
    body = payload("text_stop.json")
    ada.ingest_whatsapp(body, business_id=BUSINESS)
    events = len(consent_events(ada))

    again = ada.ingest_whatsapp(body, business_id=BUSINESS)

    assert (again.accepted, again.duplicates) == (0, 1)
    assert len(consent_events(ada)) == events


def test_start_after_stop_restores_the_latest_whatsapp_opt_in(ledger: ConsentLedger) -> None:
    opt_in(ledger, BRUNO)

    report = ledger.ingest_whatsapp(payload("text_stop_then_start.json"), business_id=BUSINESS)

    assert [o.action for o in report.outcomes] == ["opted-out", "re-granted"]
    assert whatsapp_state(ledger, BRUNO) is State.GRANTED
    last = history(ledger, BRUNO).entries[-1]
    assert last.event_type == "OptedIn"
    assert last.notice is not None
    assert str(last.notice) == "whatsapp-optin@1"
    assert set(last.granted) == {"offers", "order-updates"}


def test_start_restores_no_more_than_the_opt_in_granted(ledger: ConsentLedger) -> None:
    """A time-limited grant comes back time-limited, on its own basis and jurisdiction."""
    expires = datetime(2027, 6, 30, tzinfo=UTC)
    ledger.opt_in(
        OptIn(
            business_id=BUSINESS,
            identifier=BRUNO,
            categories=("offers",),
            notice="whatsapp-optin@1",
            method="web-form",
            expires_at=expires,
            jurisdiction="US-CA",
            occurred_at=datetime(2026, 10, 1, 9, tzinfo=UTC),
        )
    )

    ledger.ingest_whatsapp(payload("text_stop_then_start.json"), business_id=BUSINESS)

    first, *_, last = [e for e in history(ledger, BRUNO).entries if e.event_type == "OptedIn"]
    assert last.version > first.version
    assert (last.expires_at, last.jurisdiction, last.legal_basis) == (
        expires,
        "US-CA",
        first.legal_basis,
    )
    assert last.evidence is not None
    assert last.evidence.text is not None
    assert last.evidence.text.startswith(f"restores the opt-in #{first.version}; replied 'start'")
    assert "classified by keyword rules sha256:" in last.evidence.text


def test_start_from_someone_never_opted_in_grants_nothing(ledger: ConsentLedger) -> None:
    body = payload("text_stop_then_start.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["messages"] = [m for m in value["messages"] if m["text"]["body"] == "START"]

    report = ledger.ingest_whatsapp(body, business_id=BUSINESS)

    assert [o.action for o in report.outcomes] == ["refused"]
    assert consent_events(ledger, BRUNO) == []  # the START is kept as a signal, nothing granted
    assert signals(ledger, BRUNO) == ["SignalReceived"]


def test_help_and_a_longer_message_change_nothing(ada: ConsentLedger) -> None:
    events = len(consent_events(ada))

    helped = ada.ingest_whatsapp(payload("text_help.json"), business_id=BUSINESS)
    longer = ada.ingest_whatsapp(payload("text_longer_stop.json"), business_id=BUSINESS)

    assert [o.action for o in helped.outcomes] == ["noted"]
    assert [o.action for o in longer.outcomes] == ["for-review"]
    assert (helped.accepted, helped.changes) == (1, 0)  # kept as a signal: consent unchanged
    assert signals(ada) == ["SignalReceived"]  # kept in the log, the message as evidence
    assert signals(ada, DAN) == ["SignalReceived"]  # the HELP came from another person
    assert whatsapp_state(ada) is State.GRANTED
    assert len(consent_events(ada)) == events


def test_a_localised_keyword_opts_out(ledger: ConsentLedger) -> None:
    opt_in(ledger, CARLA)

    report = ledger.ingest_whatsapp(payload("text_basta_italian.json"), business_id=BUSINESS)

    assert report.outcomes[0].action == "opted-out"
    assert "(it)" in report.outcomes[0].detail
    assert whatsapp_state(ledger, CARLA) is State.WITHDRAWN


# Platform signals.


def platform_stopped(ledger: ConsentLedger) -> bool | None:
    status = ledger.get_status(ADA, business_id=BUSINESS)
    states = [p for p in status.platform if p.sender == SENDER]
    return states[0].stopped if states else None


def test_user_preferences_stop_and_resume_the_business_number(ada: ConsentLedger) -> None:
    ada.ingest_whatsapp(payload("user_preferences_stop.json"), business_id=BUSINESS)
    stopped = platform_stopped(ada)
    ada.ingest_whatsapp(payload("user_preferences_resume.json"), business_id=BUSINESS)

    assert stopped is True
    assert platform_stopped(ada) is False
    assert ada.find_subject("wa:447700900123", business_id=BUSINESS) is None  # found as Ada


def test_error_131050_records_a_platform_stop_as_evidence(ada: ConsentLedger) -> None:
    report = ada.ingest_whatsapp(payload("status_131050.json"), business_id=BUSINESS)

    assert report.outcomes[0].action == "marketing-stopped"
    assert platform_stopped(ada) is True
    assert history(ada).entries[-1].actor == "platform:whatsapp"


@pytest.mark.parametrize("name", ["status_131049.json", "status_131047.json", "status_131026.json"])
def test_other_delivery_errors_are_signals_not_consent_changes(
    ada: ConsentLedger, name: str
) -> None:
    events = len(consent_events(ada))

    report = ada.ingest_whatsapp(payload(name), business_id=BUSINESS)

    assert [o.action for o in report.outcomes] == ["noted"]
    assert "not a consent change" in report.outcomes[0].detail
    assert len(consent_events(ada)) == events
    assert whatsapp_state(ada) is State.GRANTED


# Batches, bad input, strictness.


def test_a_malformed_item_is_rejected_and_the_rest_taken(ada: ConsentLedger) -> None:
    report = ada.ingest_whatsapp(payload("malformed.json"), business_id=BUSINESS)

    assert report.rejected
    assert all("entry[" in problem for problem in report.rejected)
    assert report.accepted >= 1


def test_a_file_of_bodies_reports_each_broken_line_and_takes_the_rest(ada: ConsentLedger) -> None:
    lines = (PAYLOADS / "bodies.jsonl").read_text().splitlines(keepends=True)
    lines.insert(1, "{not json\n")

    report = ingest_whatsapp_lines(ada, lines, business_id=BUSINESS)

    assert report.rejected[0].startswith("line 2: ")
    assert report.accepted >= 1


def test_strict_refuses_the_whole_file_and_records_nothing(ada: ConsentLedger) -> None:
    lines = (PAYLOADS / "bodies.jsonl").read_text().splitlines(keepends=True)
    lines.insert(1, "{not json\n")
    events = len(consent_events(ada))

    with pytest.raises(InvalidInputError, match="nothing ingested: line 2: "):
        ingest_whatsapp_lines(ada, lines, business_id=BUSINESS, strict=True)

    assert len(consent_events(ada)) == events


def test_strict_reads_each_body_once(ada: ConsentLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [json.dumps(payload(name)) + "\n" for name in ("text_stop.json", "text_help.json")]
    parsed: list[object] = []

    def counted(body: object, *args: Any) -> Any:
        parsed.append(body)
        return parse(body, *args)

    monkeypatch.setattr("consent_ledger.whatsapp.ingestion.parse", counted)

    report = ingest_whatsapp_lines(ada, lines, business_id=BUSINESS, strict=True)

    assert report.rejected == []
    assert len(parsed) == len(lines)


def two_stops(bad_sender: str) -> Any:
    """A body of two STOP items for two people, the second from a business number ``bad_sender``."""
    body = payload("text_stop.json")
    change = body["entry"][0]["changes"][0]
    second = copy.deepcopy(change)
    second["value"]["metadata"]["phone_number_id"] = bad_sender
    second["value"]["contacts"][0]["wa_id"] = CARLA.removeprefix("+")
    for message in second["value"]["messages"]:
        message["from"] = CARLA.removeprefix("+")
        message["id"] += "-carla"
    body["entry"][0]["changes"].append(second)
    return body


def test_a_bad_item_is_reported_and_never_stops_the_good_ones(ada: ConsentLedger) -> None:
    """Each item stands alone: the first STOP lands, the malformed second is reported."""
    report = ada.ingest_whatsapp(two_stops("not a number!"), business_id=BUSINESS)

    assert whatsapp_state(ada) == State.WITHDRAWN
    assert [problem.split(":")[0] for problem in report.rejected] == [
        "entry[0].changes[1].value.metadata.phone_number_id"
    ]
    assert ada.find_subject(CARLA, business_id=BUSINESS) is None


def test_an_item_the_ledger_refuses_is_reported_and_the_rest_taken(
    ada: ConsentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a command refuses (here: any error for the second person) rejects that item."""
    record_once = ConsentLedger.record_once

    def refusing(ledger: ConsentLedger, command: Any, **kw: Any) -> Any:
        if str(command.identifier).endswith("456"):
            msg = "refused for the test"
            raise InvalidInputError(msg)
        return record_once(ledger, command, **kw)

    monkeypatch.setattr(ConsentLedger, "record_once", refusing)

    report = ada.ingest_whatsapp(two_stops(SENDER), business_id=BUSINESS)

    assert whatsapp_state(ada) == State.WITHDRAWN
    assert [o.action for o in report.outcomes] == ["opted-out", "refused"]
    assert report.outcomes[1].detail == "replied 'stop' (en): refused for the test"


def test_strict_checks_every_item_before_recording_anything(ada: ConsentLedger) -> None:
    lines = [json.dumps(payload("text_stop.json")) + "\n", json.dumps(two_stops("x y")) + "\n"]

    with pytest.raises(InvalidInputError, match="nothing ingested: line 2: entry"):
        ingest_whatsapp_lines(ada, lines, business_id=BUSINESS, strict=True)

    assert whatsapp_state(ada) == State.GRANTED


def test_an_unknown_business_takes_nothing_and_marks_nothing_seen(ada: ConsentLedger) -> None:
    with pytest.raises(BusinessNotFoundError, match="no business 'nosuch'"):
        ada.ingest_whatsapp(payload("text_stop.json"), business_id="nosuch")

    report = ada.ingest_whatsapp(payload("text_stop.json"), business_id=BUSINESS)

    assert report.duplicates == 0
    assert whatsapp_state(ada) == State.WITHDRAWN


# Any interleaving of stops, resumes and keywords ends where a reference model says.

ACTIONS = ("STOP", "START", "HELP", "pref-stop", "pref-resume")
PEOPLE = itertools.count(200)  # a new person (+44 7700 900200, ...) for each example


def body_for(action: str, n: int, person: int) -> Any:
    """The n-th action of a person as a webhook body, one minute after the one before."""
    timestamp = 1_795_000_000 + 60 * n
    wa_id = f"447700900{person:03d}"
    if action.startswith("pref-"):
        body = copy.deepcopy(payload("user_preferences_stop.json"))
        value = body["entry"][0]["changes"][0]["value"]
        value["contacts"][0]["wa_id"] = wa_id
        value["user_preferences"][0].update(
            wa_id=wa_id, value=action.removeprefix("pref-"), timestamp=timestamp
        )
        return body
    body = copy.deepcopy(payload("text_stop.json"))
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    [message] = value["messages"]
    message.update(
        {"from": wa_id, "id": f"wamid.TEST{person:04d}{n:04d}", "timestamp": str(timestamp)},
        text={"body": action},
    )
    return body


def model(actions: list[str]) -> tuple[State, bool | None]:
    """Consent to offers (opted in first), and the platform stop, after ``actions``."""
    consent, stopped = State.GRANTED, None
    for action in actions:
        if action == "STOP":
            consent = State.WITHDRAWN
        elif action == "START":  # the earlier opt-in is always there to restore
            consent = State.GRANTED
        elif action.startswith("pref-"):
            stopped = action == "pref-stop"
    return consent, stopped


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=8))
def test_any_interleaving_ends_where_the_model_says(
    shared_ledger: ConsentLedger, actions: list[str]
) -> None:
    person = next(PEOPLE)
    number = f"+447700900{person:03d}"
    opt_in(shared_ledger, number)
    for n, action in enumerate(actions):
        report = shared_ledger.ingest_whatsapp(body_for(action, n, person), business_id=BUSINESS)
        assert not report.rejected

    status = shared_ledger.get_status(number, business_id=BUSINESS)
    offers = [c for c in status.consents if c.channel == "whatsapp" and c.category == "offers"]
    platform = [p.stopped for p in status.platform if p.sender == SENDER]
    assert (offers[0].state, platform[0] if platform else None) == model(actions)


def test_the_database_keeps_no_message_id_in_clear(tmp_path: Path) -> None:
    """A WhatsApp message id encodes the person's number: only its keyed hash is kept."""
    ledger, db, _ = new_ledger(StoreFactory("sqlite", tmp_path))
    opt_in(ledger)
    body = payload("text_stop.json")
    [message] = body["entry"][0]["changes"][0]["value"]["messages"]
    ledger.ingest_whatsapp(body, business_id=BUSINESS)
    ledger.ingest_whatsapp(payload("text_help.json"), business_id=BUSINESS)
    ledger.close()

    stored = b"".join(
        p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(Path(db).name)
    )
    assert message["id"].encode() not in stored
    assert b"447700900123" not in stored


# One person, several identifiers.

DAN = "+12025550187"
DAN_BSUID = "bsuid:US.1349120865530274"


def bsuid_only(body: Any, text: str, message_id: str) -> Any:
    """The same message as it comes once the person hides their number: only the BSUID."""
    body = copy.deepcopy(body)
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": "Dan"}, "user_id": "US.1349120865530274"}]
    [message] = value["messages"]
    del message["from"]
    message.update(id=message_id, timestamp=str(int(message["timestamp"]) + 3600))
    message["text"] = {"body": text}
    return body


def test_a_payload_naming_number_and_bsuid_links_them_to_one_person(
    ledger_at: tuple[ConsentLedger, str, Path | None],
) -> None:
    ledger, db, _ = ledger_at
    opt_in(ledger, DAN)
    dan = ledger.find_subject(DAN, business_id=BUSINESS)
    body = payload("bsuid.json")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "hello"

    report = ledger.ingest_whatsapp(body, business_id=BUSINESS)
    stop = ledger.ingest_whatsapp(
        bsuid_only(body, "STOP", "wamid.BSUIDONLY1"), business_id=BUSINESS
    )

    assert "now also found by wa, bsuid" in report.outcomes[0].detail
    assert ledger.find_subject(DAN_BSUID, business_id=BUSINESS) == dan
    assert ledger.find_subject("wa:12025550188", business_id=BUSINESS) == dan
    assert stop.outcomes[0].action == "opted-out"
    assert stop.outcomes[0].recorded is not None
    assert stop.outcomes[0].recorded.subject_id == dan  # not a new person: the opt-out holds
    assert whatsapp_state(ledger, DAN) is State.WITHDRAWN
    linked = [e for e in history(ledger, DAN).entries if e.event_type == "IdentifierLinked"]
    assert sorted(str(e.identifier) for e in linked) == ["12025550188", "US.1349120865530274"]
    view = ConsentStatusView(open_view_database(db))
    catch_up(ledger.event_log, view)
    decision = ledger.check(DAN_BSUID, business_id=BUSINESS, category="offers", source=view)
    assert not decision.allowed
    assert decision.reason == "withdrawn"
    view.database.close()


def test_a_redelivered_item_links_what_a_crash_left_unlinked(ledger: ConsentLedger) -> None:
    """The item was recorded, then the process died before linking: its redelivery links."""
    opt_in(ledger, DAN)
    body = payload("bsuid.json")
    ledger.link_identifiers = lambda *_, **__: []  # type: ignore[method-assign]  # the crash
    first = ledger.ingest_whatsapp(body, business_id=BUSINESS)
    del ledger.link_identifiers  # the process started again

    again = ledger.ingest_whatsapp(body, business_id=BUSINESS)

    assert first.outcomes[0].action == "opted-out"  # recorded; nothing linked
    assert again.outcomes[0].action == "duplicate"
    assert "now also found by wa, bsuid" in again.outcomes[0].detail
    assert ledger.find_subject(DAN_BSUID, business_id=BUSINESS) is not None


def test_identifiers_of_two_people_are_not_merged(ledger: ConsentLedger) -> None:
    opt_in(ledger, DAN)
    opt_in(ledger, "+12025550199")
    other = bsuid_only(payload("bsuid.json"), "hello", "wamid.OTHER1")
    other["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "12025550199"
    ledger.ingest_whatsapp(other, business_id=BUSINESS)  # the BSUID is now +1 202-555-0199's
    body = payload("bsuid.json")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "hello"

    report = ledger.ingest_whatsapp(body, business_id=BUSINESS)

    assert "for review:" in report.outcomes[0].detail
    assert "different people: not linked" in report.outcomes[0].detail
    assert ledger.find_subject("wa:12025550188", business_id=BUSINESS) is None


# The customer service window, from the messages the person sent.


def test_a_message_from_the_person_opens_the_service_window_for_a_day(
    ledger: ConsentLedger,
) -> None:
    """Dan never opted in; he wrote HELP at 09:00: utility replies may go until 09:00 next day."""
    ledger.ingest_whatsapp(payload("text_help.json"), business_id=BUSINESS)
    [wrote] = [
        e.occurred_at for e in history(ledger, DAN).entries if e.event_type == "SignalReceived"
    ]
    assert wrote is not None

    def check(hours: float, category: str = "order-updates", **kwargs: Any) -> tuple[bool, str]:
        at = wrote + timedelta(hours=hours)
        decision = ledger.check(DAN, business_id=BUSINESS, category=category, at=at, **kwargs)
        return decision.allowed, decision.reason

    assert check(1) == (True, "service-window")
    assert check(1, sender=SENDER) == (True, "service-window")
    assert check(1, sender="other-number") == (False, "no-consent")  # he wrote to SENDER
    assert check(1, in_service_window=False) == (False, "no-consent")  # the caller knows better
    assert check(25) == (False, "no-consent")
    assert check(1, category="offers") == (False, "no-consent")  # never for marketing


# Items that used to vanish: identity changes, ignored parts, unknown user ids.


def test_a_new_number_finds_the_same_person_and_is_put_up_for_review(ada: ConsentLedger) -> None:
    report = ada.ingest_whatsapp(payload("system_user_changed_number.json"), business_id=BUSINESS)

    [outcome] = report.outcomes
    assert outcome.action == "for-review"
    assert "the old number may be given to someone else" in outcome.detail
    assert "now also found by" in outcome.detail
    assert ada.find_subject("+447700900789", business_id=BUSINESS) == ada.find_subject(
        ADA, business_id=BUSINESS
    )
    assert whatsapp_state(ada, "+447700900789") == State.GRANTED
    last = history(ada).entries[-1]
    assert (last.event_type, last.signal) == ("IdentifierLinked", None)
    [kept] = [e for e in history(ada).entries if e.event_type == "SignalReceived"]
    assert kept.signal is not None
    assert kept.signal.startswith("changed their WhatsApp number")


def test_a_number_change_of_someone_unknown_starts_no_record(ledger: ConsentLedger) -> None:
    report = ledger.ingest_whatsapp(
        payload("system_user_changed_number.json"), business_id=BUSINESS
    )

    assert [o.action for o in report.outcomes] == ["noted"]
    assert ledger.find_subject(ADA, business_id=BUSINESS) is None
    assert ledger.find_subject("+447700900789", business_id=BUSINESS) is None


def test_a_new_business_scoped_id_finds_the_same_person(ledger: ConsentLedger) -> None:
    opt_in(ledger, DAN)
    ledger.ingest_whatsapp(payload("bsuid.json"), business_id=BUSINESS)

    report = ledger.ingest_whatsapp(
        payload("system_user_changed_user_id.json"), business_id=BUSINESS
    )

    assert [o.action for o in report.outcomes] == ["identity-changed"]
    new = ledger.find_subject("bsuid:US.2349120865530274", business_id=BUSINESS)
    assert new == ledger.find_subject(DAN, business_id=BUSINESS)


def test_a_word_two_languages_share_is_recorded_in_the_senders(ledger: ConsentLedger) -> None:
    """PARAR is Spanish and Portuguese: someone from Brazil (by their user id) said it."""
    body = bsuid_only(payload("bsuid.json"), "Parar", "wamid.PARAR1")
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["user_id"] = "BR.1349120865530274"
    value["messages"][0]["from_user_id"] = "BR.1349120865530274"

    report = ledger.ingest_whatsapp(body, business_id=BUSINESS)

    assert report.outcomes[0].detail.startswith("replied 'parar' (pt)")


def test_a_stop_older_than_the_latest_opt_in_says_that_opt_in_still_stands(
    ledger: ConsentLedger,
) -> None:
    ledger.opt_in(
        OptIn(
            business_id=BUSINESS,
            identifier=ADA,
            categories=("offers",),
            notice="whatsapp-optin@1",
            method="web-form",
            occurred_at=datetime(2026, 11, 25, 9, tzinfo=UTC),  # after the STOP was sent
        )
    )

    report = ledger.ingest_whatsapp(payload("text_stop.json"), business_id=BUSINESS)

    [stop] = [o for o in report.outcomes if o.recorded and o.recorded.event_type == "OptedOut"]
    assert stop.action == "superseded"
    assert stop.detail.startswith(
        "replied 'stop' (en): recorded; an opt-in after it still stands: offers (#2 OptedIn)"
    )
    assert report.changes == 0
    assert whatsapp_state(ledger) is State.GRANTED


def test_ignored_parts_of_a_body_are_reported_and_counted(ada: ConsentLedger) -> None:
    body = payload("text_stop.json")
    body["entry"][0]["changes"].append(
        {"field": "message_template_status_update", "value": {"event": "APPROVED"}}
    )

    report = ada.ingest_whatsapp(body, business_id=BUSINESS)

    ignored = [o for o in report.outcomes if o.action == "ignored"]
    assert [(o.path, o.signal) for o in ignored] == [("entry[0].changes[1]", None)]
    assert "carries no consent signal" in ignored[0].detail
    assert report.summary().endswith("ignored 1, rejected 0")


def test_a_stop_from_an_unknown_business_scoped_id_is_put_up_for_review(
    ledger: ConsentLedger,
) -> None:
    opt_in(ledger, DAN)
    body = bsuid_only(payload("bsuid.json"), "STOP", "wamid.NEVERSEEN1")

    report = ledger.ingest_whatsapp(body, business_id=BUSINESS)

    [outcome] = [o for o in report.outcomes if o.path.startswith("entry[0].changes[0]")]
    assert outcome.action == "opted-out"
    assert "for review: a new record was started for a business-scoped user id" in outcome.detail
    assert whatsapp_state(ledger, DAN) is State.GRANTED  # until someone links the two
