"""Views: exactly once, rebuildable, in any database, and complete under concurrent writers."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from consent_ledger.projections import (
    AuditLogView,
    AuditQuery,
    ConsentStatusView,
    ViewError,
    catch_up,
    follow,
    open_view_database,
    open_views,
    rebuild,
)

from consent_ledger import ConsentLedger, OptIn, OptOut, RecordPlatformPreference
from consent_ledger.model.status import END_OF_TIME, base_state, visible
from consent_ledger.storage.log import EventLog
from tests.conftest import BUSINESS, StoreFactory, new_ledger
from tests.test_integrity import RawStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from consent_ledger.projections import ViewDatabase

NOW = datetime.now(UTC)
PEOPLE = ("+447700900101", "+447700900102", "+447700900103")
KEYS = [
    (channel, category, sender)
    for channel in ("whatsapp", "sms", "rcs")
    for category in ("offers", "order-updates", "newsletters", "recommendations")
    for sender in (None, "15550001111", "15550002222")
]


def record_story(ledger: ConsentLedger) -> None:
    """A few people, with grants, category and sender withdrawals, a stop, a late entry."""
    ada, bruno, chiara = PEOPLE
    for person in PEOPLE:
        ledger.opt_in(
            OptIn(
                business_id=BUSINESS,
                identifier=person,
                categories=("offers", "order-updates"),
                notice="whatsapp-optin@1",
                method="web-form",
                occurred_at=NOW - timedelta(days=20),
            )
        )
    ledger.opt_out(
        OptOut(business_id=BUSINESS, identifier=ada, method="api", categories=("offers",))
    )
    ledger.opt_out(
        OptOut(business_id=BUSINESS, identifier=bruno, method="api", sender="15550001111")
    )
    ledger.opt_out(OptOut(business_id=BUSINESS, identifier=chiara, method="api", channel=None))
    ledger.record_platform_preference(
        RecordPlatformPreference(
            business_id=BUSINESS, identifier=ada, sender="15550002222", stopped=True
        )
    )
    ledger.opt_in(
        OptIn(
            business_id=BUSINESS,
            identifier=chiara,
            channel="sms",
            categories=("offers",),
            notice="sms-optin@1",
            method="paper",
            occurred_at=NOW - timedelta(days=30),  # entered late: before her opt-out
        )
    )


def answers(view: ConsentStatusView, ledger: ConsentLedger) -> dict[Any, Any]:
    """What the view answers for every person and key (with its platform states)."""
    out: dict[Any, Any] = {}
    for person in PEOPLE:
        subject = ledger.find_subject(person, business_id=BUSINESS)
        assert subject is not None
        for key in KEYS:
            out[person, key] = view.consent(subject, *key)
        out[person, "platform"] = sorted(view.platform(subject), key=lambda p: p.sender or "")
    return out


def folded(ledger: ConsentLedger) -> dict[Any, Any]:
    """The same answers, folded from each person's record."""
    out: dict[Any, Any] = {}
    for person in PEOPLE:
        subject = ledger.find_subject(person, business_id=BUSINESS)
        assert subject is not None
        record = ledger.books.consent_record(subject)
        effects = visible(record.effects(), END_OF_TIME, END_OF_TIME)
        for key in KEYS:
            out[person, key] = base_state(effects, *key)
        out[person, "platform"] = record.platform(END_OF_TIME, END_OF_TIME)
    return out


@dataclass(frozen=True)
class Views:
    """The views of a ledger, in the ledger's own database."""

    database: ViewDatabase
    status: ConsentStatusView
    audit: AuditLogView


@pytest.fixture
def views(ledger: ConsentLedger) -> Iterator[Views]:
    assert ledger.store is not None
    database = open_view_database(ledger.store)
    status, audit = open_views(database, ["consent-status", "audit-log"])
    assert isinstance(status, ConsentStatusView)
    assert isinstance(audit, AuditLogView)
    yield Views(database, status, audit)
    database.close()


class TestCatchUp:
    def test_the_status_view_answers_as_the_records_do(
        self, ledger: ConsentLedger, views: Views
    ) -> None:
        record_story(ledger)

        for view in (views.status, views.audit):
            assert catch_up(ledger.event_log, view) == ledger.event_log.head()

        assert answers(views.status, ledger) == folded(ledger)

    def test_catching_up_in_small_batches_gives_the_same_view(
        self, ledger: ConsentLedger, views: Views
    ) -> None:
        record_story(ledger)

        catch_up(ledger.event_log, views.status, batch_size=2)

        assert answers(views.status, ledger) == folded(ledger)

    def test_a_replayed_batch_changes_nothing(self, ledger: ConsentLedger, views: Views) -> None:
        record_story(ledger)
        log = ledger.event_log
        status, audit = views.status, views.audit
        for view in (status, audit):
            catch_up(log, view)
        before = answers(status, ledger), audit.count()

        batch = log.read(0, 1000)
        assert status.process(log, batch) == 0
        assert audit.process(log, batch) == 0
        assert catch_up(log, status) == catch_up(log, audit) == 0

        assert (answers(status, ledger), audit.count()) == before

    def test_a_rebuild_equals_the_incremental_view(
        self, ledger: ConsentLedger, views: Views
    ) -> None:
        status = views.status
        for person in PEOPLE:  # incremental: one event at a time, as they arrive
            ledger.opt_out(OptOut(business_id=BUSINESS, identifier=person, method="api"))
            catch_up(ledger.event_log, status)
        record_story(ledger)
        catch_up(ledger.event_log, status)
        incremental = answers(status, ledger)

        rebuild(ledger.event_log, status)

        assert answers(status, ledger) == incremental == folded(ledger)

    def test_a_view_refuses_another_ledgers_log(
        self,
        stores: StoreFactory,
        views: Views,
        ledger: ConsentLedger,
    ) -> None:
        other, _, _ = new_ledger(stores)
        catch_up(ledger.event_log, views.status)

        with pytest.raises(ViewError, match=r"follows ledger .*, not"):
            catch_up(other.event_log, views.status)
        other.close()

    def test_a_view_of_another_schema_version_is_rebuilt(
        self, ledger: ConsentLedger, views: Views
    ) -> None:
        record_story(ledger)
        catch_up(ledger.event_log, views.status)

        class NextConsentStatusView(ConsentStatusView):
            schema_version = ConsentStatusView.schema_version + 1

        upgraded = NextConsentStatusView(views.database)

        assert upgraded.position() == 0
        assert upgraded.subject_ids() == []
        catch_up(ledger.event_log, upgraded)
        assert answers(upgraded, ledger) == folded(ledger)

    def test_two_processes_catching_up_at_once_apply_each_event_once(
        self, ledger_at: tuple[ConsentLedger, str, Path | None]
    ) -> None:
        ledger, db, _ = ledger_at
        record_story(ledger)
        errors: list[Exception] = []

        def run() -> None:
            database = open_view_database(db)
            try:
                with EventLog.open(db) as log:
                    catch_up(log, AuditLogView(database), batch_size=3)
            except Exception as e:  # noqa: BLE001 (any failure is the finding)
                errors.append(e)
            finally:
                database.close()

        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        database = open_view_database(db)
        audit = AuditLogView(database)
        assert [r.position for r in audit.query(AuditQuery())] == [
            e.position for e in ledger.event_log
        ]
        database.close()


class TestAuditLog:
    def test_answers_an_auditors_questions(self, ledger: ConsentLedger, views: Views) -> None:
        record_story(ledger)
        audit = views.audit
        catch_up(ledger.event_log, audit)

        def ask(**filters: Any) -> list[tuple[str, str | None]]:
            rows = audit.query(AuditQuery(business_id=BUSINESS, **filters))
            return [(r.event_type, r.channel) for r in rows]

        assert ask(event_types=("OptedOut",)) == [
            ("OptedOut", "whatsapp"),
            ("OptedOut", "whatsapp"),
            ("OptedOut", "*"),
        ]
        last_month = NOW - timedelta(days=31), NOW - timedelta(days=25)
        assert ask(occurred_from=last_month[0], occurred_to=last_month[1]) == [("OptedIn", "sms")]
        assert ask(method="paper", notice_id="sms-optin", notice_version=1) == [("OptedIn", "sms")]
        assert len(ask(category="offers", event_types=("OptedIn",))) == 4
        assert ask(category="offers", event_types=("OptedOut",)) == [("OptedOut", "whatsapp")]
        assert ask(event_types=("PlatformMarketingStopped",)) == [
            ("PlatformMarketingStopped", "whatsapp")
        ]

    def test_rows_hold_no_personal_data(self, ledger: ConsentLedger, views: Views) -> None:
        record_story(ledger)
        audit = views.audit
        catch_up(ledger.event_log, audit)

        text = repr(list(audit.query(AuditQuery())))

        assert all(person not in text and person[1:] not in text for person in PEOPLE)
        subject = ledger.find_subject(PEOPLE[0], business_id=BUSINESS)
        mine = list(audit.query(AuditQuery(subject_id=subject)))
        assert [r.event_type for r in mine] == [
            "SubjectRegistered",
            "OptedIn",
            "OptedOut",
            "PlatformMarketingStopped",
        ]
        assert {r.business_id for r in mine} == {BUSINESS}


class TestAudience:
    def test_everyone_granted_with_the_sender_rows_deciding_for_their_sender(
        self, ledger: ConsentLedger, views: Views
    ) -> None:
        record_story(ledger)
        status = views.status
        catch_up(ledger.event_log, status)
        ada, bruno, _ = (str(ledger.find_subject(p, business_id=BUSINESS)) for p in PEOPLE)

        def audience(
            category: str, sender: str | None = None, channel: str = "whatsapp"
        ) -> set[Any]:
            return {c.subject_id for c in status.audience(BUSINESS, channel, category, sender)}

        assert audience("order-updates") == {ada, bruno}
        assert audience("order-updates", "15550001111") == {ada}  # bruno withdrew from it
        assert audience("offers") == {bruno}
        assert audience("offers", channel="sms") == set()  # chiara's late opt-in came first


@pytest.mark.postgres
def test_a_view_in_a_second_database_equals_the_first(tmp_path: Path) -> None:
    """SQLite views fed from the PostgreSQL log equal the views in PostgreSQL itself."""
    factory = StoreFactory("postgres", tmp_path)
    ledger, db, _ = new_ledger(factory)
    try:
        record_story(ledger)
        results = []
        for where in (db, str(tmp_path / "replica.db")):
            database = open_view_database(where)
            status, audit = open_views(database)
            assert isinstance(status, ConsentStatusView)
            assert isinstance(audit, AuditLogView)
            with EventLog.open(db) as log:
                catch_up(log, status)
                catch_up(log, audit)
            results.append((answers(status, ledger), list(audit.query(AuditQuery()))))
            database.close()
        assert results[0] == results[1]
        assert results[0][0] == folded(ledger)
    finally:
        ledger.close()
        factory.cleanup()


@pytest.mark.postgres
def test_a_follower_misses_no_event_under_concurrent_writers(tmp_path: Path) -> None:
    """8 writers commit while a follower tails the log: the view gets every event, once.

    This guards the ordering hazard of reference/integrity.md: with inserts that do not
    take the table lock, a tailing reader skips events that commit out of order.
    """
    factory = StoreFactory("postgres", tmp_path)
    ledger, db, key_file = new_ledger(factory)
    before = ledger.event_log.head()
    view_db = str(tmp_path / "follower.db")
    stop = threading.Event()
    errors: list[Exception] = []
    try:

        def tail() -> None:
            database = open_view_database(view_db)
            try:
                with EventLog.open(db) as log:
                    follow(log, [AuditLogView(database)], stop, poll_interval=0.05)
            except Exception as e:  # noqa: BLE001 (any failure is the finding)
                errors.append(e)
            finally:
                database.close()

        def write(n: int) -> None:
            with ConsentLedger.open(db, key_file=key_file) as own:
                for i in range(25):
                    own.opt_in(
                        OptIn(
                            business_id=BUSINESS,
                            identifier=f"+4477009{n:02}{i:03}",
                            categories=("offers",),
                            notice="whatsapp-optin@1",
                            method="api",
                        )
                    )

        follower = threading.Thread(target=tail)
        follower.start()
        writers = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        head = ledger.event_log.head()
        database = open_view_database(view_db)
        audit = AuditLogView(database)
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while audit.position() < head and datetime.now(UTC) < deadline:
            stop.wait(0.05)
        stop.set()
        follower.join()

        seen = [r.position for r in audit.query(AuditQuery())]
        logged = [e.position for e in ledger.event_log]
        database.close()
        assert errors == []
        assert len(logged) == before + 8 * 25 * 2  # two events per new person
        assert seen == logged
    finally:
        stop.set()
        ledger.close()
        factory.cleanup()


@pytest.mark.parametrize("page_rows", [5, 1000])
def test_the_audience_is_exactly_whom_check_allows(
    ledger: ConsentLedger, page_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For every category, sender and policy: audience == everyone check() allows.

    In pages of 5 rows, a person's two rows (their sender's and every sender's) can fall on
    two pages.
    """
    monkeypatch.setattr("consent_ledger.storage.view_database.PAGE_ROWS", page_rows)
    people = [f"+4477009002{n:02}" for n in range(12)] + ["+33612345678", "+18765550123"]
    for n, person in enumerate(people):
        categories = ("offers", "order-updates") if n % 3 else ("order-updates",)
        expires = NOW - timedelta(days=1) if n % 5 == 4 else None
        ledger.opt_in(
            OptIn(
                business_id=BUSINESS,
                identifier=person,
                categories=categories,
                notice="whatsapp-optin@1",
                method="web-form",
                occurred_at=NOW - timedelta(days=10),
                expires_at=expires,
            )
        )
        if n % 4 == 1:
            ledger.opt_out(
                OptOut(business_id=BUSINESS, identifier=person, method="api", sender="15550001111")
            )
        if n % 6 == 2:
            ledger.record_platform_preference(
                RecordPlatformPreference(
                    business_id=BUSINESS, identifier=person, sender="15550002222", stopped=True
                )
            )
    assert ledger.store is not None
    database = open_view_database(ledger.store)
    view = ConsentStatusView(database)
    catch_up(ledger.event_log, view)

    for category in ("offers", "order-updates"):
        for sender in (None, "15550001111", "15550002222"):
            for policy in ("whatsapp-2025", "whatsapp-2021", "consent-only"):
                recipients = ledger.audience(
                    view.audience(BUSINESS, "whatsapp", category, sender),
                    business_id=BUSINESS,
                    category=category,
                    sender=sender,
                    policy=policy,
                )
                allowed = {
                    person
                    for person in people
                    if ledger.check(
                        person,
                        business_id=BUSINESS,
                        category=category,
                        sender=sender,
                        policy=policy,
                        source=view,
                    ).allowed
                }
                assert {str(r.identifier) for r in recipients} == allowed, (
                    category,
                    sender,
                    policy,
                )
    database.close()


def test_an_audience_reads_every_page_and_skips_whoever_was_erased_or_stopped(
    ledger_at: tuple[ConsentLedger, str, Path | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person whose data key is destroyed cannot be addressed: they are left out.

    So is one who stopped marketing from the sender, whichever page they fall on.
    """
    ledger, db, _ = ledger_at
    people = [f"+4477009003{n:02}" for n in range(7)]
    for person in people:
        ledger.opt_in(
            OptIn(
                business_id=BUSINESS,
                identifier=person,
                categories=("offers",),
                notice="whatsapp-optin@1",
                method="web-form",
            )
        )
    ledger.record_platform_preference(
        RecordPlatformPreference(
            business_id=BUSINESS, identifier=people[5], sender="15550002222", stopped=True
        )
    )
    erased = ledger.find_subject(people[3], business_id=BUSINESS)
    assert erased is not None
    raw = RawStore(db)
    raw.forget(erased)
    raw.close()
    assert ledger.store is not None
    views = open_view_database(ledger.store)
    view = ConsentStatusView(views)
    catch_up(ledger.event_log, view)
    # Four pages of candidates.
    monkeypatch.setattr("consent_ledger.storage.view_database.PAGE_ROWS", 2)

    recipients = ledger.audience(
        view.audience(BUSINESS, "whatsapp", "offers", "15550002222"),
        business_id=BUSINESS,
        category="offers",
        sender="15550002222",
    )

    assert sorted(str(r.identifier) for r in recipients) == [people[n] for n in (0, 1, 2, 4, 6)]
    views.close()
