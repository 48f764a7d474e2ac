"""Damage to what decisions rest on (views, lookups, kept checkpoints) is found by verify.

Each test damages one table behind the ledger's back, as someone with access to the
database could (issue #11), shows where that matters, and requires ``verify`` to fail
naming the table and the person or position; an undamaged ledger still verifies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from consent_ledger.projections import (
    AuditLogView,
    ConsentStatusView,
    catch_up_all,
    open_view_database,
    view_checks,
)
from psycopg import sql

from consent_ledger import Identifier, OptIn, OptOut, RecordPlatformPreference
from consent_ledger.model.taxonomy import Method
from consent_ledger.model.values import Provenance
from consent_ledger.storage.stores import parse_store

from .conftest import BUSINESS
from .test_integrity import RawStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from consent_ledger.projections import ViewDatabase

    from consent_ledger import ConsentLedger
    from consent_ledger.evidence.verification import Verification

ADA, BRUNO, CHIARA = "+447700900111", "+447700900222", "+447700900333"
CHIARA_WA = "wa:447700900333"


class LedgerTables(RawStore):
    """The ledger's own tables (lookups, keys, checkpoints), reached behind its back."""

    def __init__(self, db: str) -> None:
        super().__init__(db)
        store = parse_store(db)
        schema = sql.Identifier(getattr(store, "schema", ""))
        self.lookups: sql.Composable = (
            sql.SQL("{}.consentledger_subject_lookup").format(schema)
            if self.postgres
            else sql.SQL("subject_lookup")
        )

    def key(self, subject: uuid.UUID) -> Any:
        """A subject id as the ledger's tables store it."""
        return subject if self.postgres else subject.hex

    def delete_lookups(self, subject: uuid.UUID) -> None:
        query = sql.SQL("DELETE FROM {} WHERE subject_id = %s").format(self.lookups)
        self.execute(query, (self.key(subject),))

    def point_lookups(self, subject: uuid.UUID, to: uuid.UUID) -> None:
        query = sql.SQL("UPDATE {} SET subject_id = %s WHERE subject_id = %s").format(self.lookups)
        self.execute(query, (self.key(to), self.key(subject)))

    def add_lookup(self, lookup: bytes, subject: uuid.UUID) -> None:
        query = sql.SQL("INSERT INTO {} (lookup, subject_id) VALUES (%s, %s)").format(self.lookups)
        self.execute(query, (lookup, self.key(subject)))


@dataclass
class Built:
    """A ledger with its views caught up in its own database, and its tables at hand."""

    ledger: ConsentLedger
    database: ViewDatabase
    status: ConsentStatusView
    audit: AuditLogView
    tables: LedgerTables

    def subject(self, identifier: str) -> uuid.UUID:
        found = self.ledger.find_subject(identifier, business_id=BUSINESS)
        assert found is not None
        return found

    def verify(self, since: list[str] | None = None) -> Verification:
        checks = view_checks([self.status, self.audit], self.ledger.event_log)
        return self.ledger.verify(since=since or [], views=checks)

    def fails(self, *expected: str) -> str:
        """Verify must fail; its message must name each of ``expected``."""
        verification = self.verify()
        assert not verification.ok
        problem = verification.problem or ""
        for part in expected:
            assert part in problem, problem
        return problem

    def damage(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(statement, params)

    def catch_up(self) -> None:
        catch_up_all(self.ledger.event_log, [self.status, self.audit])


def story(ledger: ConsentLedger) -> None:
    """Ada opts in to offers and out again; Bruno opts in; Chiara opts in, is linked, stops."""
    for person in (ADA, BRUNO, CHIARA):
        ledger.opt_in(
            OptIn(
                business_id=BUSINESS,
                identifier=person,
                categories=("offers", "order-updates"),
                notice="whatsapp-optin@1",
                method="web-form",
            )
        )
    ledger.opt_out(
        OptOut(business_id=BUSINESS, identifier=ADA, categories=("offers",), method="sms-keyword")
    )
    ledger.link_identifiers(
        BUSINESS,
        [Identifier.parse(CHIARA), Identifier.parse(CHIARA_WA)],
        provenance=Provenance(
            method=Method.PLATFORM, actor="whatsapp", occurred_at=datetime.now(UTC)
        ),
    )
    ledger.record_platform_preference(
        RecordPlatformPreference(business_id=BUSINESS, identifier=CHIARA, stopped=True)
    )


@pytest.fixture
def built(ledger_at: tuple[ConsentLedger, str, Path | None]) -> Iterator[Built]:
    ledger, db, _ = ledger_at
    story(ledger)
    ledger.checkpoint()
    database = open_view_database(ledger.event_log.store)
    status, audit = (ConsentStatusView(database), AuditLogView(database))
    catch_up_all(ledger.event_log, [status, audit])
    tables = LedgerTables(db)
    yield Built(ledger, database, status, audit, tables)
    tables.close()
    database.close()


def offers_for(built: Built, identifier: str) -> bool:
    """What a send-time check answers, reading the status view as the CLI does."""
    decision = built.ledger.check(
        identifier, business_id=BUSINESS, category="offers", source=built.status
    )
    return decision.allowed


# An undamaged ledger.


def test_an_undamaged_ledger_and_its_views_verify(built: Built) -> None:
    verification = built.verify()

    assert verification.ok, verification.problem
    assert verification.derived is not None
    assert verification.derived.people == 3
    assert dict(verification.derived.views) == {
        "consent-status": built.ledger.event_log.head(),
        "audit-log": built.ledger.event_log.head(),
    }


def test_erasing_a_person_leaves_the_ledger_verifying(built: Built) -> None:
    """A person whose key is gone is skipped: their lookups may stay or go."""
    ada = built.subject(ADA)
    built.tables.forget(ada)

    kept = built.verify()
    built.tables.delete_lookups(ada)
    gone = built.verify()

    assert kept.ok, kept.problem
    assert gone.ok, gone.problem
    assert kept.derived is not None
    assert (kept.derived.people, kept.derived.erased) == (2, 1)


def test_a_view_behind_the_log_is_compared_up_to_its_position(built: Built) -> None:
    position = built.status.position()
    built.ledger.opt_out(OptOut(business_id=BUSINESS, identifier=BRUNO, method="sms-keyword"))
    built.ledger.opt_in(
        OptIn(
            business_id=BUSINESS,
            identifier="+447700900444",
            categories=("offers",),
            notice="whatsapp-optin@1",
            method="web-form",
        )
    )

    verification = built.verify()

    assert verification.ok, verification.problem
    assert verification.derived is not None
    assert dict(verification.derived.views)["consent-status"] == position


def test_views_caught_up_in_small_batches_verify(built: Built) -> None:
    """Refolding a person across batches gives the rows folding them at once gives."""
    for view in (built.status, built.audit):
        view.reset()
    catch_up_all(built.ledger.event_log, [built.status, built.audit], batch_size=1)

    verification = built.verify()

    assert verification.ok, verification.problem


def test_log_only_skips_what_is_derived(built: Built) -> None:
    built.damage(f"DELETE FROM {built.status.status}")

    verification = built.ledger.verify(log_only=True)

    assert verification.ok
    assert verification.derived is None


# The consent-status view.


def test_answers_edited_to_grant_someone_who_opted_out_are_found(built: Built) -> None:
    ada = built.subject(ADA)
    assert not offers_for(built, ADA)
    built.damage(
        f"UPDATE {built.status.subjects} SET answers = REPLACE(answers, 'withdrawn', 'granted') "
        "WHERE subject_id = ?",
        (str(ada),),
    )
    assert offers_for(built, ADA)  # what the damage does: a check now allows the send

    built.fails(f"{built.status.subjects}: subject {ada}: answers (what a check reads) differ")


def test_a_deleted_status_row_is_found(built: Built) -> None:
    bruno = built.subject(BRUNO)
    built.damage(
        f"DELETE FROM {built.status.status} WHERE subject_id = ? AND category = 'offers'",
        (str(bruno),),
    )

    built.fails(f"{built.status.status}: subject {bruno}: no row for whatsapp/offers/any")


def test_an_edited_status_row_is_found(built: Built) -> None:
    ada = built.subject(ADA)
    audience = list(built.status.audience(BUSINESS, "whatsapp", "offers", None))
    built.damage(
        f"UPDATE {built.status.status} SET state = 'granted' WHERE subject_id = ? "
        "AND category = 'offers'",
        (str(ada),),
    )
    assert (
        len(list(built.status.audience(BUSINESS, "whatsapp", "offers", None))) == len(audience) + 1
    )  # what the damage does: Ada, who opted out, is in the audience

    built.fails(
        f"{built.status.status}: subject {ada}: whatsapp/offers/any: state is 'granted', "
        "the log says 'withdrawn'"
    )


def test_a_deleted_marketing_stop_is_found(built: Built) -> None:
    chiara = built.subject(CHIARA)
    built.damage(f"DELETE FROM {built.status.platform_table}")

    built.fails(f"{built.status.platform_table}: subject {chiara}: no row for any")


def test_a_person_the_log_does_not_register_is_found(built: Built) -> None:
    stranger = str(uuid.uuid4())
    built.damage(
        f"INSERT INTO {built.status.subjects} SELECT ?, business_id, identifier_kind, "
        f"identifier_nonce, identifier_ct, effects, answers, sends FROM {built.status.subjects} "
        "WHERE subject_id = ?",
        (stranger, str(built.subject(BRUNO))),
    )

    built.fails(f"subject {stranger} is not registered in the log")


def test_a_view_lookup_pointing_at_another_person_is_found(built: Built) -> None:
    ada, bruno = built.subject(ADA), built.subject(BRUNO)
    built.damage(
        f"UPDATE {built.status.lookups} SET subject_id = ? WHERE subject_id = ?",
        (str(bruno), str(ada)),
    )
    assert offers_for(built, ADA)  # Ada's number now finds Bruno's consent

    built.fails(
        f"{built.status.lookups}: the identifier of subject {ada}", f"finds subject {bruno}"
    )


def test_a_deleted_view_lookup_is_found(built: Built) -> None:
    chiara = built.subject(CHIARA)
    built.damage(f"DELETE FROM {built.status.lookups} WHERE subject_id = ?", (str(chiara),))

    built.fails(f"{built.status.lookups}: the identifier of subject {chiara}", "finds nobody")


def test_a_view_lookup_the_ledger_does_not_hold_is_found(built: Built) -> None:
    bruno = built.subject(BRUNO)
    built.damage(
        f"INSERT INTO {built.status.lookups} (lookup, subject_id) VALUES (?, ?)",
        (b"\x01" * 32, str(bruno)),
    )

    built.fails(f"a lookup finds subject {bruno} in the view, but not in the ledger's lookups")


# The audit-log view.


def test_an_edited_audit_row_is_found(built: Built) -> None:
    position = built.ledger.event_log.head()
    built.damage(
        f"UPDATE {built.audit.rows} SET method = 'web-form' WHERE position = ?", (position,)
    )

    built.fails(f"{built.audit.rows}: position {position}: method is 'web-form'")


def test_a_deleted_audit_row_is_found(built: Built) -> None:
    position = built.ledger.event_log.head()
    built.damage(f"DELETE FROM {built.audit.rows} WHERE position = ?", (position,))

    built.fails(f"{built.audit.rows}: position {position} (PlatformMarketingStopped) is missing")


def test_a_deleted_category_row_is_found(built: Built) -> None:
    built.damage(f"DELETE FROM {built.audit.categories} WHERE category = 'order-updates'")

    built.fails(f"{built.audit.categories}: position", "has no row for category order-updates")


def test_an_audit_row_for_no_event_is_found(built: Built) -> None:
    built.damage(
        f"INSERT INTO {built.audit.rows} SELECT position + 1000, stream_type, stream_id, "
        "stream_version, event_type, business_id, subject_id, channel, sender, granted, "
        "withdrawn, confirmed, method, collection_point, actor, notice_id, notice_version, "
        f"occurred_at, recorded_at FROM {built.audit.rows} WHERE position = ?",
        (built.ledger.event_log.head(),),
    )

    built.fails(f"{built.audit.rows}: position {built.ledger.event_log.head() + 1000}")


# The ledger's lookups.


def test_a_deleted_lookup_is_found(built: Built) -> None:
    """The person's next opt-out would start a new record while the old one stays granted."""
    bruno = built.subject(BRUNO)
    built.tables.delete_lookups(bruno)
    assert built.ledger.find_subject(BRUNO, business_id=BUSINESS) is None

    built.fails(
        f"subject_lookup: the identifier of subject {bruno} recorded at position",
        "has no lookup (the person's next opt-out would start a new record)",
    )


def test_an_opt_out_after_a_deleted_lookup_is_found_on_its_new_record(built: Built) -> None:
    """The issue's case: the opt-out starts a new record; the old one stays granted."""
    bruno = built.subject(BRUNO)
    built.tables.delete_lookups(bruno)
    recorded = built.ledger.opt_out(
        OptOut(business_id=BUSINESS, identifier=BRUNO, method="sms-keyword")
    )
    built.catch_up()
    assert recorded.new_subject  # what the damage does
    assert recorded.subject_id != bruno

    built.fails(
        f"subject_lookup: the identifier of subject {bruno} recorded at position",
        f"finds subject {recorded.subject_id} instead",
    )


def test_a_lookup_pointing_at_another_person_is_found(built: Built) -> None:
    ada, bruno = built.subject(ADA), built.subject(BRUNO)
    built.tables.point_lookups(ada, bruno)

    built.fails(f"the identifier of subject {ada} recorded at position", f"finds subject {bruno}")


def test_a_linked_identifier_without_its_lookup_is_found(built: Built) -> None:
    chiara = built.subject(CHIARA)
    wa = built.ledger._keyring.lookup(BUSINESS, Identifier.parse(CHIARA_WA))
    built.tables.execute(
        sql.SQL("DELETE FROM {} WHERE lookup = %s").format(built.tables.lookups), (wa,)
    )

    built.fails(f"subject_lookup: the identifier of subject {chiara} recorded at position")


def test_a_lookup_of_nobody_is_found(built: Built) -> None:
    stranger = uuid.uuid4()
    built.tables.add_lookup(b"\x02" * 32, stranger)

    built.fails(f"subject_lookup: a lookup finds subject {stranger}, which the log has no record")


def test_a_lookup_no_identifier_hashes_to_is_found(built: Built) -> None:
    bruno = built.subject(BRUNO)
    built.tables.add_lookup(b"\x03" * 32, bruno)

    built.fails(f"subject {bruno} is found by a lookup that none of its identifiers hashes to")


# Kept checkpoints.


def test_a_kept_checkpoint_the_ledger_holds_verifies(built: Built) -> None:
    kept = built.ledger.tamper_evidence.latest()
    assert kept is not None
    built.ledger.opt_out(OptOut(business_id=BUSINESS, identifier=BRUNO, method="sms-keyword"))
    built.ledger.checkpoint()
    built.catch_up()

    verification = built.verify(since=[kept.note])

    assert verification.ok, verification.problem


# Events no checkpoint covers yet.


def test_an_unreadable_event_after_the_latest_checkpoint_is_a_finding(built: Built) -> None:
    """No signature covers it, so verify cannot say what it was; it says it does not read."""
    built.ledger.opt_out(OptOut(business_id=BUSINESS, identifier=BRUNO, method="sms-keyword"))
    position = built.ledger.event_log.head()
    built.tables.set_state(position, b'{"timestamp":')

    verification = built.verify()

    assert verification.covered < position
    assert verification.problem == (
        f"position {position}: the stored event does not decode (JSONDecodeError): the log "
        "was changed where no checkpoint covers it"
    )
