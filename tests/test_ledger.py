"""The ledger's rules, end to end through the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from eventsourcing.persistence import IntegrityError
from psycopg import sql

from consent_ledger import (
    BusinessNotFoundError,
    ChangeCategories,
    ConcurrentUpdateError,
    ConfirmOptIn,
    ConsentLedger,
    ConsentRuleError,
    Evidence,
    KeyMaterialError,
    NoticeNotFoundError,
    NoticeRuleError,
    OptIn,
    OptOut,
    PublishNotice,
    RecordPlatformPreference,
    RegisterBusiness,
    State,
    SubjectNotFoundError,
)
from consent_ledger.storage.sqlite import SQLiteLedgerRecorder

from .conftest import BUSINESS, StoreFactory, new_ledger

if TYPE_CHECKING:
    import uuid
    from pathlib import Path

ADA = "+447700900123"
NOW = datetime.now(UTC)


def opt_in(**fields: Any) -> OptIn:
    values: dict[str, Any] = {
        "business_id": BUSINESS,
        "identifier": ADA,
        "categories": ("offers",),
        "notice": "whatsapp-optin@1",
        "method": "web-form",
    }
    return OptIn(**(values | fields))


def opt_out(**fields: Any) -> OptOut:
    values: dict[str, Any] = {
        "business_id": BUSINESS,
        "identifier": ADA,
        "method": "whatsapp-thread",
    }
    return OptOut(**(values | fields))


def states(ledger: ConsentLedger, **query: Any) -> dict[tuple[str, str], State]:
    status = ledger.get_status(query.pop("identifier", ADA), business_id=BUSINESS, **query)
    return {(c.channel, c.category): c.state for c in status.consents if c.sender is None}


def event_count(ledger: ConsentLedger) -> int:
    return ledger.recorder.max_notification_id() or 0


class TestOptInNeedsACoveringNotice:
    def test_a_notice_that_covers_the_categories_is_accepted(self, ledger: ConsentLedger) -> None:
        recorded = ledger.opt_in(opt_in(categories=("offers", "order-updates")))

        assert recorded.event_type == "OptedIn"
        assert states(ledger) == {
            ("whatsapp", "offers"): State.GRANTED,
            ("whatsapp", "order-updates"): State.GRANTED,
        }

    def test_a_category_the_notice_does_not_name_is_refused(self, ledger: ConsentLedger) -> None:
        before = event_count(ledger)

        with pytest.raises(NoticeRuleError, match="does not cover newsletters"):
            ledger.opt_in(opt_in(categories=("offers", "newsletters")))

        assert event_count(ledger) == before

    def test_a_notice_for_another_channel_is_refused(self, ledger: ConsentLedger) -> None:
        with pytest.raises(NoticeRuleError, match="is for channel sms, not whatsapp"):
            ledger.opt_in(opt_in(notice="sms-optin"))

    def test_a_notice_of_another_business_is_refused(self, ledger: ConsentLedger) -> None:
        ledger.register_business(RegisterBusiness(business_id="globex", display_name="Globex"))

        with pytest.raises(NoticeNotFoundError, match="'globex' has published no notice"):
            ledger.opt_in(opt_in(business_id="globex"))

    def test_an_unpublished_version_is_refused(self, ledger: ConsentLedger) -> None:
        with pytest.raises(NoticeNotFoundError, match="no version 7"):
            ledger.opt_in(opt_in(notice="whatsapp-optin@7"))

    def test_the_latest_version_is_used_when_none_is_named(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(notice="whatsapp-optin", categories=("newsletters",)))

        [consent] = ledger.get_status(ADA, business_id=BUSINESS).consents
        assert consent.notice is not None
        assert str(consent.notice) == "whatsapp-optin@2"

    def test_an_unknown_business_is_refused(self, ledger: ConsentLedger) -> None:
        with pytest.raises(NoticeNotFoundError):
            ledger.opt_in(opt_in(business_id="initech"))
        with pytest.raises(BusinessNotFoundError, match="no business 'initech'"):
            ledger.opt_out(opt_out(business_id="initech"))


class TestOptOutIsNeverRefused:
    def test_for_a_person_the_ledger_has_never_seen(self, ledger: ConsentLedger) -> None:
        recorded = ledger.opt_out(opt_out())

        assert recorded.new_subject
        assert states(ledger) == {("whatsapp", "*"): State.WITHDRAWN}

    def test_for_a_category_never_granted(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(categories=("offers",)))

        ledger.opt_out(opt_out(categories=("order-updates",)))

        assert states(ledger) == {
            ("whatsapp", "offers"): State.GRANTED,
            ("whatsapp", "order-updates"): State.WITHDRAWN,
        }

    def test_all_categories_withdraws_every_grant_on_the_channel(
        self, ledger: ConsentLedger
    ) -> None:
        ledger.opt_in(opt_in(categories=("offers", "order-updates")))
        ledger.opt_in(opt_in(channel="sms", notice="sms-optin", categories=("offers",)))

        ledger.opt_out(opt_out(categories=None))

        assert states(ledger) == {
            ("sms", "offers"): State.GRANTED,
            ("whatsapp", "*"): State.WITHDRAWN,
            ("whatsapp", "offers"): State.WITHDRAWN,
            ("whatsapp", "order-updates"): State.WITHDRAWN,
        }

    def test_all_channels_withdraws_everywhere(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())
        ledger.opt_in(opt_in(channel="sms", notice="sms-optin"))

        ledger.opt_out(opt_out(channel=None, categories=None))

        assert set(states(ledger).values()) == {State.WITHDRAWN}

    def test_a_backdated_opt_in_does_not_override_a_later_opt_out(
        self, ledger: ConsentLedger
    ) -> None:
        ledger.opt_out(opt_out(occurred_at=NOW - timedelta(days=1)))

        ledger.opt_in(opt_in(occurred_at=NOW - timedelta(days=30)))

        assert states(ledger)[("whatsapp", "offers")] == State.WITHDRAWN


class TestRepeatedOptIn:
    def test_is_recorded_as_new_evidence_and_status_shows_the_latest(
        self, ledger: ConsentLedger
    ) -> None:
        ledger.opt_in(opt_in(occurred_at=NOW - timedelta(days=10)))
        second = ledger.opt_in(opt_in(notice="whatsapp-optin@2"))

        [consent] = ledger.get_status(ADA, business_id=BUSINESS).consents
        assert consent.event_version == second.version
        assert str(consent.notice) == "whatsapp-optin@2"
        history = ledger.get_history(ADA, business_id=BUSINESS)
        assert [e.event_type for e in history.entries] == [
            "SubjectRegistered",
            "OptedIn",
            "OptedIn",
        ]


class TestCategoriesAreIndependent:
    def test_withdrawing_one_leaves_the_others(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(categories=("offers", "order-updates")))

        ledger.opt_out(opt_out(categories=("offers",)))

        assert states(ledger) == {
            ("whatsapp", "offers"): State.WITHDRAWN,
            ("whatsapp", "order-updates"): State.GRANTED,
        }

    def test_change_grants_and_withdraws_in_one_event(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(categories=("offers", "order-updates")))

        recorded = ledger.change_categories(
            ChangeCategories(
                business_id=BUSINESS,
                identifier=ADA,
                grant=("newsletters",),
                withdraw=("offers",),
                notice="whatsapp-optin@2",
                method="web-form",
            )
        )

        assert recorded.event_type == "CategoriesChanged"
        assert states(ledger) == {
            ("whatsapp", "newsletters"): State.GRANTED,
            ("whatsapp", "offers"): State.WITHDRAWN,
            ("whatsapp", "order-updates"): State.GRANTED,
        }

    def test_change_that_grants_needs_a_covering_notice(self, ledger: ConsentLedger) -> None:
        change = ChangeCategories(
            business_id=BUSINESS,
            identifier=ADA,
            grant=("newsletters",),
            method="web-form",
        )
        with pytest.raises(NoticeRuleError, match="needs the notice"):
            ledger.change_categories(change)
        with pytest.raises(NoticeRuleError, match="does not cover newsletters"):
            ledger.change_categories(change.model_copy(update={"notice": ("whatsapp-optin", 1)}))

    def test_change_that_only_withdraws_needs_no_notice(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        ledger.change_categories(
            ChangeCategories(
                business_id=BUSINESS, identifier=ADA, withdraw=("offers",), method="web-form"
            )
        )

        assert states(ledger) == {("whatsapp", "offers"): State.WITHDRAWN}

    def test_change_refuses_a_category_both_granted_and_withdrawn(
        self, ledger: ConsentLedger
    ) -> None:
        with pytest.raises(ConsentRuleError, match="offers cannot be granted and withdrawn"):
            ledger.change_categories(
                ChangeCategories(
                    business_id=BUSINESS,
                    identifier=ADA,
                    grant=("offers",),
                    withdraw=("offers",),
                    notice="whatsapp-optin",
                    method="web-form",
                )
            )


class TestExpiry:
    def test_a_grant_reads_as_expired_after_its_expiry_without_a_new_event(
        self, ledger: ConsentLedger
    ) -> None:
        expiry = NOW - timedelta(days=1)
        ledger.opt_in(opt_in(occurred_at=NOW - timedelta(days=30), expires_at=expiry))

        [before] = ledger.get_status(
            ADA, business_id=BUSINESS, at=expiry - timedelta(seconds=1)
        ).consents
        [after] = ledger.get_status(ADA, business_id=BUSINESS).consents

        assert before.state == State.GRANTED
        assert before.expires_at == expiry
        assert after.state == State.EXPIRED
        assert after.since == expiry
        assert len(ledger.get_history(ADA, business_id=BUSINESS).entries) == 2

    def test_an_expiry_before_the_grant_is_refused(self, ledger: ConsentLedger) -> None:
        with pytest.raises(ConsentRuleError, match="no later than it was given"):
            ledger.opt_in(
                opt_in(occurred_at=NOW - timedelta(days=1), expires_at=NOW - timedelta(days=2))
            )


class TestDoubleOptIn:
    def test_pending_until_confirmed(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(awaiting_confirmation=True))
        assert states(ledger) == {("whatsapp", "offers"): State.PENDING}

        ledger.confirm_opt_in(
            ConfirmOptIn(
                business_id=BUSINESS, identifier=ADA, categories=("offers",), method="sms-keyword"
            )
        )

        assert states(ledger) == {("whatsapp", "offers"): State.GRANTED}

    def test_confirming_what_was_not_pending_is_refused(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        with pytest.raises(ConsentRuleError, match="no opt-in for offers on whatsapp awaited"):
            ledger.confirm_opt_in(
                ConfirmOptIn(
                    business_id=BUSINESS, identifier=ADA, categories=("offers",), method="api"
                )
            )

    def test_confirming_for_a_stranger_is_refused(self, ledger: ConsentLedger) -> None:
        with pytest.raises(SubjectNotFoundError):
            ledger.confirm_opt_in(
                ConfirmOptIn(
                    business_id=BUSINESS, identifier=ADA, categories=("offers",), method="api"
                )
            )


class TestTwoTimes:
    def test_as_it_was_counts_events_recorded_later(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in(occurred_at=NOW - timedelta(days=20)))
        recorded_at = ledger.get_history(ADA, business_id=BUSINESS).entries[-1].recorded_at

        was = states(ledger, at=NOW - timedelta(days=10))
        known = states(
            ledger, at=NOW - timedelta(days=10), known_at=recorded_at - timedelta(microseconds=1)
        )

        assert was == {("whatsapp", "offers"): State.GRANTED}
        assert known == {}

    def test_known_at_alone_gives_the_answer_the_ledger_gave_then(
        self, ledger: ConsentLedger
    ) -> None:
        ledger.opt_in(opt_in())
        between = datetime.now(UTC)
        ledger.opt_out(opt_out())

        assert states(ledger, known_at=between) == {("whatsapp", "offers"): State.GRANTED}
        assert states(ledger)[("whatsapp", "offers")] == State.WITHDRAWN


class TestHistory:
    def test_shows_every_event_with_times_actor_method_notice_and_evidence(
        self, ledger: ConsentLedger
    ) -> None:
        ledger.opt_in(
            opt_in(
                occurred_at=NOW - timedelta(days=3),
                collection_point="checkout",
                evidence=Evidence(text="ticked the box", ip="192.0.2.7"),
            )
        )
        ledger.opt_out(opt_out(actor="operator:ada", reason="asked by phone"))

        history = ledger.get_history("+44 7700 900123", business_id=BUSINESS)

        registered, opted_in, opted_out = history.entries
        assert history.identifier == ADA
        assert registered.identifier == ADA
        assert opted_in.occurred_at is not None
        assert opted_in.occurred_at < opted_in.recorded_at
        assert (opted_in.method, opted_in.collection_point, opted_in.actor) == (
            "web-form",
            "checkout",
            "subject",
        )
        assert str(opted_in.notice) == "whatsapp-optin@1"
        assert opted_in.evidence == Evidence(text="ticked the box", ip="192.0.2.7")
        assert (opted_out.actor, opted_out.reason, opted_out.withdrawn) == (
            "operator:ada",
            "asked by phone",
            ("*",),
        )

    def test_a_stranger_has_no_history(self, ledger: ConsentLedger) -> None:
        with pytest.raises(SubjectNotFoundError, match="no consent record for \\+447700900123"):
            ledger.get_history(ADA, business_id=BUSINESS)

    def test_people_are_found_by_any_written_form_of_their_number(
        self, ledger: ConsentLedger
    ) -> None:
        ledger.opt_in(opt_in(identifier="+44 (0)7700-900123"))

        assert ledger.find_subject("+447700900123", business_id=BUSINESS) is not None
        assert ledger.find_subject("+447700900124", business_id=BUSINESS) is None


class TestNotices:
    def test_versions_are_numbered_and_hashed(self, ledger: ConsentLedger) -> None:
        versions = ledger.list_notice_versions(BUSINESS, "whatsapp-optin")

        assert [v.version for v in versions] == [1, 2]
        assert all(v.content_hash.startswith("sha256:") for v in versions)
        assert [n.notice_id for n in ledger.list_notices(BUSINESS)] == [
            "whatsapp-optin",
            "sms-optin",
        ]

    def test_a_notice_must_name_the_business(self, ledger: ConsentLedger) -> None:
        with pytest.raises(NoticeRuleError, match="must say 'Acme Outfitters'"):
            ledger.publish_notice(
                PublishNotice(
                    business_id=BUSINESS,
                    notice_id="anonymous",
                    language="en",
                    categories=("offers",),
                    text="We may send you offers.",
                )
            )


class TestConcurrentWriters:
    def test_no_event_is_lost(self, ledger_at: tuple[ConsentLedger, str, Path | None]) -> None:
        _, db, key_file = ledger_at
        writers, commands_each = 4, 6
        errors: list[Exception] = []
        start = threading.Barrier(writers)

        def write(n: int) -> None:
            with ConsentLedger.open(db, key_file=key_file) as own:
                start.wait()
                try:
                    for i in range(commands_each):
                        if (n + i) % 2:
                            own.opt_out(opt_out(identifier="+447700900999"))
                        else:
                            own.opt_in(opt_in(identifier="+447700900999"))
                except Exception as e:  # noqa: BLE001 (any failure is the test's finding)
                    errors.append(e)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        with ConsentLedger.open(db, key_file=key_file) as reader:
            history = reader.get_history("+447700900999", business_id=BUSINESS)
        assert len(history.entries) == 1 + writers * commands_each
        assert [e.version for e in history.entries] == list(range(1, 2 + writers * commands_each))

    def test_a_conflict_that_never_clears_is_reported_and_nothing_written(
        self, ledger: ConsentLedger, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        before = event_count(ledger)

        def always_conflicts(*_: object, **__: object) -> None:
            msg = "duplicate key"
            raise IntegrityError(msg)

        monkeypatch.setattr(ledger, "save", always_conflicts)

        with pytest.raises(ConcurrentUpdateError, match="nothing was recorded: run it again"):
            ledger.opt_in(opt_in())  # an opt-out keeps trying: see test_contention.py
        assert event_count(ledger) == before


class TestSubjects:
    def test_subject_ids_are_time_ordered_uuid7(self, ledger: ConsentLedger) -> None:
        ids = [
            ledger.opt_out(opt_out(identifier=f"+4477009001{n:02}")).subject_id for n in range(5)
        ]

        assert {i.version for i in ids} == {7}
        assert ids == sorted(ids)

    def test_history_copes_with_an_erased_data_key(
        self, ledger_at: tuple[ConsentLedger, str, Path | None]
    ) -> None:
        ledger, db, key_file = ledger_at
        ledger.opt_in(opt_in(evidence=Evidence(text="ticked the box")))
        subject_id = ledger.find_subject(ADA, business_id=BUSINESS)
        assert subject_id is not None
        delete_data_key(ledger, subject_id)

        with ConsentLedger.open(db, key_file=key_file) as fresh:
            history = fresh.get_history(ADA, business_id=BUSINESS)
            status = fresh.get_status(ADA, business_id=BUSINESS)

        registered, opted_in = history.entries
        assert (registered.identifier, registered.personal_data_erased) == (None, True)
        assert (opted_in.evidence, opted_in.personal_data_erased) == (None, True)
        assert str(opted_in.notice) == "whatsapp-optin@1"  # the facts survive
        assert [c.state for c in status.consents] == [State.GRANTED]


class TestAPersonWhoseKeyIsGone:
    """Erased, or damaged: an opt-out still lands, and nothing may be sent to them."""

    @pytest.fixture
    def erased(self, ledger_at: tuple[ConsentLedger, str, Path | None]) -> ConsentLedger:
        ledger, db, key_file = ledger_at
        ledger.opt_in(opt_in(evidence=Evidence(text="ticked the box")))
        subject_id = ledger.find_subject(ADA, business_id=BUSINESS)
        assert subject_id is not None
        delete_data_key(ledger, subject_id)
        return ConsentLedger.open(db, key_file=key_file)

    def test_an_opt_out_is_recorded_without_its_personal_data(self, erased: ConsentLedger) -> None:
        with erased:
            recorded = erased.opt_out(
                opt_out(reason="replied STOP", evidence=Evidence(text="the STOP message"))
            )
            status = erased.get_status(ADA, business_id=BUSINESS)
            withdrawal = erased.get_history(ADA, business_id=BUSINESS).entries[-1]

        assert recorded.event_type == "OptedOut"
        assert recorded.left_out == ("reason", "evidence")
        assert {c.state for c in status.consents} == {State.WITHDRAWN}
        assert (withdrawal.reason, withdrawal.evidence) == (None, None)

    def test_a_marketing_stop_is_recorded_too(self, erased: ConsentLedger) -> None:
        with erased:
            recorded = erased.record_platform_preference(
                RecordPlatformPreference(business_id=BUSINESS, identifier=ADA, stopped=True)
            )

        assert (recorded.event_type, recorded.left_out) == ("PlatformMarketingStopped", ())

    def test_an_opt_in_is_refused(self, erased: ConsentLedger) -> None:
        with erased, pytest.raises(KeyMaterialError, match="is gone"):
            erased.opt_in(opt_in())

    def test_no_send_is_allowed_though_consent_stands(self, erased: ConsentLedger) -> None:
        with erased:
            decision = erased.check(ADA, business_id=BUSINESS, category="offers")
            now = datetime.now(UTC)
            folded = erased.check(ADA, business_id=BUSINESS, category="offers", at=now)

        assert (decision.allowed, str(decision.reason)) == (False, "erased")
        assert (folded.allowed, str(folded.reason)) == (False, "erased")
        assert decision.event_type == "OptedIn"  # the consent it would have rested on


def delete_data_key(ledger: ConsentLedger, subject_id: uuid.UUID) -> None:
    """What erasure will do: destroy the subject's data key, and nothing else."""
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        if isinstance(ledger.recorder, SQLiteLedgerRecorder):
            cursor.execute("DELETE FROM subject_keys WHERE subject_id = ?", (subject_id.hex,))
        else:
            table = ledger.recorder.keys_table  # type: ignore[attr-defined]
            cursor.execute(
                sql.SQL("DELETE FROM {} WHERE subject_id = %s").format(table), (subject_id,)
            )


class TestStorageSettings:
    def test_postgres_never_inserts_through_db_functions(
        self, stores: StoreFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "y")
        monkeypatch.setenv("CONSENTLEDGER_POSTGRES_ENABLE_DB_FUNCTIONS", "y")
        ledger, _, _ = new_ledger(stores)

        datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
        if stores.backend == "postgres":
            assert datastore.enable_db_functions is False
        else:
            with datastore.transaction(commit=False) as cursor:
                cursor.execute("PRAGMA journal_mode")
                assert cursor.fetchone()[0] == "wal"
        ledger.close()


class TestPlatformMarketingPreference:
    def test_a_stop_is_recorded_per_sender_and_a_resume_lifts_it(
        self, ledger: ConsentLedger
    ) -> None:
        def platform() -> dict[str | None, bool]:
            status = ledger.get_status(ADA, business_id=BUSINESS)
            return {p.sender: p.stopped for p in status.platform}

        stop = RecordPlatformPreference(
            business_id=BUSINESS, identifier=ADA, sender="15550001111", stopped=True
        )
        ledger.record_platform_preference(stop)
        assert platform() == {"15550001111": True}

        ledger.record_platform_preference(stop.model_copy(update={"stopped": False}))
        assert platform() == {"15550001111": False}

        history = ledger.get_history(ADA, business_id=BUSINESS)
        assert [(e.event_type, e.platform_marketing, e.method) for e in history.entries[1:]] == [
            ("PlatformMarketingStopped", "stopped", "platform"),
            ("PlatformMarketingResumed", "resumed", "platform"),
        ]

    def test_a_stop_does_not_touch_consent(self, ledger: ConsentLedger) -> None:
        ledger.opt_in(opt_in())

        ledger.record_platform_preference(
            RecordPlatformPreference(business_id=BUSINESS, identifier=ADA, stopped=True)
        )

        assert states(ledger) == {("whatsapp", "offers"): State.GRANTED}
