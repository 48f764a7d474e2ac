"""The record of sends: each send with its decision, frequency limits and quiet hours."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from consent_ledger.projections import (
    ConsentStatusView,
    catch_up,
    open_view_database,
    rebuild,
    view_checks,
)

from consent_ledger import ConsentLedger, InvalidInputError, OptIn, OptOut, PublishNotice
from consent_ledger.model.commands import DefineCategory, RecordSend
from consent_ledger.sending.eligibility import Reason, policy_file
from consent_ledger.storage.log import stored_events

from .conftest import BUSINESS

if TYPE_CHECKING:
    from pathlib import Path

MIAMI = "+13055550123"  # a Florida area code, in the fictional 555-01XX range
DC = "+12025550143"  # Washington DC: the US, not Florida
ROME = "+390612345678"
# 1 December 2026 is a Tuesday; Miami is UTC-5 then (EST).
NOON_IN_MIAMI = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def opt_in(ledger: ConsentLedger, person: str = MIAMI, **fields: Any) -> None:
    values: dict[str, Any] = {
        "business_id": BUSINESS,
        "identifier": person,
        "categories": ("offers", "order-updates"),
        "notice": "whatsapp-optin@1",
        "method": "web-form",
        "occurred_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    ledger.opt_in(OptIn(**(values | fields)))


def send(
    ledger: ConsentLedger,
    message_id: str,
    at: datetime,
    *,
    person: str = MIAMI,
    only_if_allowed: bool = True,
    **fields: Any,
) -> Any:
    values: dict[str, Any] = {
        "business_id": BUSINESS,
        "identifier": person,
        "message_id": message_id,
        "category": "offers",
        "policy": "us-fl-ftsa",
        "occurred_at": at,
    }
    return ledger.record_send(RecordSend(**(values | fields)), only_if_allowed=only_if_allowed)


class TestTheRecordOfSends:
    def test_a_send_is_kept_with_the_consent_it_rested_on(self, ledger: ConsentLedger) -> None:
        opt_in(ledger)

        outcome = send(ledger, "wamid.ONE", NOON_IN_MIAMI)
        [entry] = [e for e in ledger.get_history(MIAMI, business_id=BUSINESS).entries if e.send]

        assert outcome.recorded is not None
        assert (outcome.decision.allowed, outcome.decision.event_version) == (True, 2)
        assert entry.event_type == "MessageSent"
        assert entry.occurred_at == NOON_IN_MIAMI
        assert entry.send is not None
        assert (entry.send.category, entry.send.template_category) == ("offers", "MARKETING")
        assert (entry.send.allowed, entry.send.reason, entry.send.rests_on) == (
            True,
            "consented",
            2,
        )
        assert entry.send.policy == "us-fl-ftsa"

    def test_a_message_id_is_recorded_once(self, ledger: ConsentLedger) -> None:
        opt_in(ledger)
        first = send(ledger, "wamid.ONE", NOON_IN_MIAMI)

        again = send(ledger, "wamid.ONE", NOON_IN_MIAMI + timedelta(minutes=5))

        assert again.duplicate
        assert again.recorded is None
        assert again.earlier is not None
        assert again.earlier.originator_version == first.recorded.version
        sends = [e for e in ledger.get_history(MIAMI, business_id=BUSINESS).entries if e.send]
        assert len(sends) == 1

    def test_a_send_that_was_not_allowed_is_still_recorded_as_such(
        self, ledger: ConsentLedger
    ) -> None:
        opt_in(ledger)
        ledger.opt_out(
            OptOut(
                business_id=BUSINESS,
                identifier=MIAMI,
                method="sms-keyword",
                occurred_at=NOON_IN_MIAMI - timedelta(days=1),
            )
        )

        made = send(ledger, "wamid.SENT-ANYWAY", NOON_IN_MIAMI, only_if_allowed=False)
        reserved = send(ledger, "wamid.REFUSED", NOON_IN_MIAMI, only_if_allowed=True)

        assert made.recorded is not None
        assert (made.decision.allowed, made.decision.reason) == (False, Reason.WITHDRAWN)
        assert reserved.recorded is None
        kept = [e.send for e in ledger.get_history(MIAMI, business_id=BUSINESS).entries if e.send]
        assert [(s.allowed, s.reason) for s in kept if s] == [(False, "withdrawn")]

    def test_no_message_id_is_stored_in_clear(self, ledger: ConsentLedger) -> None:
        opt_in(ledger)
        send(ledger, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0", NOON_IN_MIAMI)

        stored = b"".join(row[4] for row in stored_events(ledger.event_log))

        assert b"MessageSent" in b"".join(
            row[3].encode() for row in stored_events(ledger.event_log)
        )
        assert b"HBgLMTY1MDM4Nzk0" not in stored

    def test_a_send_of_a_business_own_category(self, ledger: ConsentLedger) -> None:
        ledger.define_category(
            DefineCategory(
                business_id=BUSINESS,
                name="loyalty-points",
                description="Loyalty points and rewards",
                template_category="MARKETING",
            )
        )
        ledger.publish_notice(
            PublishNotice(
                business_id=BUSINESS,
                notice_id="loyalty",
                language="en",
                categories=("loyalty-points",),
                text="Acme Outfitters may message me about my loyalty points.",
            )
        )
        opt_in(ledger, categories=("loyalty-points",), notice="loyalty@1")

        outcome = send(ledger, "wamid.POINTS", NOON_IN_MIAMI, category="loyalty-points")

        assert outcome.recorded is not None
        assert outcome.decision.request.template_category == "MARKETING"

    def test_sends_are_in_the_signed_log(self, ledger: ConsentLedger) -> None:
        opt_in(ledger)
        send(ledger, "wamid.ONE", NOON_IN_MIAMI)

        signed = ledger.checkpoint()
        verification = ledger.verify()

        assert verification.ok, verification.problem
        assert signed.size == ledger.event_log.head()


class TestFrequencyLimits:
    def test_florida_allows_three_on_a_subject_in_24_hours(self, ledger: ConsentLedger) -> None:
        opt_in(ledger)
        decisions = [
            send(ledger, f"wamid.{n}", NOON_IN_MIAMI + timedelta(hours=n)).decision
            for n in range(4)
        ]

        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert decisions[3].reason == Reason.FREQUENCY_LIMIT
        assert decisions[3].detail == (
            "at most 3 sends of offers per 24 hours: 3 sent in the 24 hours before; "
            "the next may go at 2026-12-02T17:00:00Z"
        )

    def test_the_limit_counts_per_subject_and_rolls(self, ledger: ConsentLedger) -> None:
        opt_in(ledger)
        for n in range(3):
            send(ledger, f"wamid.{n}", NOON_IN_MIAMI + timedelta(hours=n))

        other_subject = ledger.check(
            MIAMI,
            business_id=BUSINESS,
            category="order-updates",
            policy="us-fl-ftsa",
            at=NOON_IN_MIAMI + timedelta(hours=3),
        )
        next_day = send(ledger, "wamid.NEXT", NOON_IN_MIAMI + timedelta(hours=24)).decision

        assert other_subject.allowed
        assert next_day.allowed

    def test_a_check_counts_the_sends_recorded(self, ledger: ConsentLedger) -> None:
        opt_in(ledger)
        for n in range(3):
            send(ledger, f"wamid.{n}", NOON_IN_MIAMI + timedelta(hours=n))

        decision = ledger.check(
            MIAMI,
            business_id=BUSINESS,
            category="offers",
            policy="us-fl-ftsa",
            at=NOON_IN_MIAMI + timedelta(hours=4),
        )

        assert decision.reason == Reason.FREQUENCY_LIMIT

    def test_outside_florida_the_limit_does_not_apply(self, ledger: ConsentLedger) -> None:
        opt_in(ledger, DC)
        decisions = [
            send(ledger, f"wamid.dc{n}", NOON_IN_MIAMI + timedelta(hours=n), person=DC).decision
            for n in range(4)
        ]

        assert all(d.allowed for d in decisions)

    def test_a_calendar_day_is_the_recipients(self, ledger: ConsentLedger, tmp_path: Path) -> None:
        policy = tmp_path / "one-a-day.json"
        policy.write_text(
            '{"name": "one-a-day", "description": "d", "source": "s", '
            '"recipient_countries": null, "marketing_needs_marketing_category": true, '
            '"honour_platform_marketing_stop": true, '
            '"frequency_limits": [{"max_sends": 1, "per_day": true}]}'
        )
        opt_in(ledger)
        late_evening = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)  # 23:00 on 1 Dec in Miami
        send(ledger, "wamid.EVENING", late_evening, policy=str(policy))

        same_day = send(ledger, "wamid.LATER", late_evening + timedelta(minutes=30),
                        policy=str(policy)).decision  # fmt: skip
        next_day = send(ledger, "wamid.MORNING", late_evening + timedelta(hours=2),
                        policy=str(policy)).decision  # fmt: skip

        assert (same_day.allowed, same_day.reason) == (False, Reason.FREQUENCY_LIMIT)
        assert "sent on 2026-12-01 in America/New_York" in same_day.detail
        assert next_day.allowed


TWO_A_DAY = (
    '{"name": "two-a-day", "description": "d", "source": "s", "recipient_countries": null, '
    '"marketing_needs_marketing_category": true, "honour_platform_marketing_stop": true, '
    '"frequency_limits": [{"max_sends": 2, "within_hours": 24, "per": "category"}]}'
)


class TestLimitsFromTheView:
    """A check against a caught-up status view counts the sends the view keeps."""

    def test_the_view_and_the_record_count_the_same_sends(
        self, ledger: ConsentLedger, tmp_path: Path
    ) -> None:
        policy = tmp_path / "two-a-day.json"
        policy.write_text(TWO_A_DAY)
        opt_in(ledger)
        now = datetime.now(UTC)
        for n in (3, 2):
            send(ledger, f"wamid.{n}", now - timedelta(hours=n), policy=str(policy))
        assert ledger.store is not None
        database = open_view_database(ledger.store)
        view = ConsentStatusView(database)
        catch_up(ledger.event_log, view)

        from_view = ledger.check(
            MIAMI, business_id=BUSINESS, category="offers", policy=str(policy), source=view
        )
        from_record = ledger.check(MIAMI, business_id=BUSINESS, category="offers",
                                   policy=str(policy), at=datetime.now(UTC))  # fmt: skip
        other_category = ledger.check(
            MIAMI, business_id=BUSINESS, category="order-updates", policy=str(policy), source=view
        )
        database.close()

        assert from_view.reason == Reason.FREQUENCY_LIMIT
        assert from_view.detail.split(";")[0] == from_record.detail.split(";")[0]
        assert other_category.allowed

    def test_a_view_keeps_31_days_of_sends_rebuilt_or_caught_up(
        self, ledger: ConsentLedger
    ) -> None:
        opt_in(ledger)
        for day in (40, 20, 1):
            send(ledger, f"wamid.day{day}", NOON_IN_MIAMI - timedelta(days=day),
                 only_if_allowed=False)  # fmt: skip
        assert ledger.store is not None
        database = open_view_database(ledger.store)
        view = ConsentStatusView(database)
        catch_up(ledger.event_log, view)
        subject = ledger.find_subject(MIAMI, business_id=BUSINESS)
        assert subject is not None
        caught_up = view.sends(subject)
        rebuild(ledger.event_log, view)
        rebuilt = view.sends(subject)
        verified = ledger.verify(views=view_checks([view], ledger.event_log))
        database.close()

        assert caught_up == rebuilt
        assert [s.sent_at for s in rebuilt] == [
            NOON_IN_MIAMI - timedelta(days=20),
            NOON_IN_MIAMI - timedelta(days=1),
        ]
        assert verified.ok, verified.problem


class TestQuietHours:
    @pytest.mark.parametrize(
        ("person", "at", "quiet"),
        [
            (MIAMI, datetime(2026, 12, 2, 1, 30, tzinfo=UTC), True),  # 20:30 in Florida
            (MIAMI, datetime(2026, 12, 2, 0, 30, tzinfo=UTC), False),  # 19:30 in Florida
            (DC, datetime(2026, 12, 2, 1, 30, tzinfo=UTC), False),  # 20:30 in DC: TCPA is 21:00
            (DC, datetime(2026, 12, 2, 2, 30, tzinfo=UTC), True),  # 21:30 in DC
            (ROME, datetime(2026, 12, 1, 19, 30, tzinfo=UTC), False),  # 20:30 in Italy
            # The daylight-saving change (8 March 2026): 07:30 EST, then 08:30 EDT.
            (MIAMI, datetime(2026, 3, 7, 12, 30, tzinfo=UTC), True),
            (MIAMI, datetime(2026, 3, 9, 12, 30, tzinfo=UTC), False),
        ],
    )
    def test_local_time_decides(
        self, ledger: ConsentLedger, person: str, at: datetime, *, quiet: bool
    ) -> None:
        opt_in(ledger, person, occurred_at=datetime(2026, 1, 1, tzinfo=UTC))

        decision = ledger.check(
            person, business_id=BUSINESS, category="offers", policy="us-fl-ftsa", at=at
        )

        assert (decision.reason == Reason.QUIET_HOURS) is quiet
        assert decision.allowed is not quiet

    def test_a_quiet_hours_denial_says_when_sends_open(self, ledger: ConsentLedger) -> None:
        opt_in(ledger)

        decision = ledger.check(
            MIAMI,
            business_id=BUSINESS,
            category="offers",
            policy="us-fl-ftsa",
            at=datetime(2026, 12, 2, 1, 30, tzinfo=UTC),
        )

        assert decision.detail == (
            "20:30 in America/New_York, within quiet hours 20:00 to 08:00; "
            "sends open at 2026-12-02T13:00:00Z"
        )

    def test_utility_messages_are_not_held_by_marketing_hours(self, ledger: ConsentLedger) -> None:
        opt_in(ledger)

        decision = ledger.check(
            MIAMI,
            business_id=BUSINESS,
            category="order-updates",
            policy="us-fl-ftsa",
            at=datetime(2026, 12, 2, 1, 30, tzinfo=UTC),
        )

        assert decision.allowed


class TestPolicyFiles:
    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            (', "colour": "red"', "policy colour: unknown field"),
            (
                ', "frequency_limits": [{"max_sends": 3, "within_hours": -1}]',
                "policy frequency_limits[0].within_hours: not a positive number of hours",
            ),
            (
                ', "quiet_hours": [{"start": "8pm", "end": "08:00"}]',
                "policy quiet_hours[0].start: not a time of day HH:MM",
            ),
            (
                ', "quiet_hours": [{"start": "20:00", "end": "08:00", "countries": ["Florida"]}]',
                "policy quiet_hours[0].countries: not a list of ISO 3166 country codes",
            ),
        ],
    )
    def test_an_error_names_its_field(self, tmp_path: Path, extra: str, message: str) -> None:
        path = tmp_path / "mine.json"
        path.write_text(
            '{"name": "mine", "description": "d", "source": "s", "recipient_countries": null, '
            '"marketing_needs_marketing_category": true, "honour_platform_marketing_stop": true'
            + extra
            + "}"
        )

        with pytest.raises(InvalidInputError, match=re.escape(f"policy file {path}: {message}")):
            policy_file(str(path))


RACE = """
import sys
from datetime import UTC, datetime
from consent_ledger import ConsentLedger
from consent_ledger.model.commands import DefineCategory, RecordSend
db, key, worker = sys.argv[1], sys.argv[2] or None, sys.argv[3]
ledger = ConsentLedger.open(db, key_file=key)
allowed = 0
for n in range(4):
    outcome = ledger.record_send(
        RecordSend(business_id="acme", identifier="+13055550123", category="offers",
                   message_id=f"wamid.{worker}.{n}", policy="us-fl-ftsa",
                   occurred_at=datetime(2026, 12, 1, 17, 0, tzinfo=UTC)),
        only_if_allowed=True,
    )
    allowed += outcome.recorded is not None
ledger.close()
print(allowed)
"""


def test_racing_senders_never_exceed_the_limit(
    ledger_at: tuple[ConsentLedger, str, Path | None],
) -> None:
    """Eight processes reserve sends for one person under a limit of 3: exactly 3 land."""
    ledger, db, key_file = ledger_at
    opt_in(ledger)
    ledger.close()

    workers = [
        subprocess.Popen(  # noqa: S603 (this interpreter, fixed code)
            [sys.executable, "-c", RACE, db, str(key_file or ""), str(worker)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(8)
    ]
    results = [worker.communicate(timeout=120) for worker in workers]

    assert all(worker.returncode == 0 for worker in workers), [err for _, err in results]
    assert sum(int(out) for out, _ in results) == 3
    with ConsentLedger.open(db, key_file=key_file) as fresh:
        history = fresh.get_history(MIAMI, business_id=BUSINESS)
    assert sum(1 for e in history.entries if e.send and e.send.allowed) == 3
