"""Properties of the read side, for random decisions about a few people.

* the status view caught up after every command == the view rebuilt from scratch ==
  the fold of each person's events, for every channel, category and sender;
* ``check --at T`` == the reference model at every moment T.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from consent_ledger.projections import (
    ConsentStatusView,
    catch_up,
    open_view_database,
    rebuild,
    view_checks,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from consent_ledger import ConsentRuleError, SubjectNotFoundError
from consent_ledger.model.status import END_OF_TIME, base_state, visible
from consent_ledger.sending.eligibility import Reason
from tests.conftest import BUSINESS, StoreFactory, new_ledger
from tests.strategies import CATEGORIES, CHANNELS, SENDERS, Model, Step, steps
from tests.test_properties import moments, run

if TYPE_CHECKING:
    from datetime import datetime

    from consent_ledger import ConsentLedger
    from consent_ledger.sending.eligibility import Decision

PEOPLE = ("email:ada@example.com", "email:bruno@example.com", "email:chiara@example.com")
KEYS = [(c, k, s) for c in CHANNELS for k in CATEGORIES for s in SENDERS]
REASONS = {
    None: Reason.NO_CONSENT,
    "granted": Reason.CONSENTED,
    "withdrawn": Reason.WITHDRAWN,
    "expired": Reason.EXPIRED,
    "pending": Reason.PENDING_CONFIRMATION,
}

decisions = st.lists(st.tuples(st.integers(0, len(PEOPLE) - 1), steps()), min_size=1, max_size=10)


@settings(max_examples=max(10, settings().max_examples // 4))
@given(story=decisions)
def test_incremental_view_equals_rebuilt_view_equals_fold(
    module_stores: StoreFactory, story: list[tuple[int, Step]]
) -> None:
    """However the view got there, it answers as each person's record does."""
    ledger, _, _ = new_ledger(module_stores)
    assert ledger.store is not None
    incremental_db = open_view_database(ledger.store)
    rebuilt_db = open_view_database(module_stores.folder / f"rebuilt-{id(ledger)}.db")
    try:
        incremental = ConsentStatusView(incremental_db)
        for person, step in story:
            try:
                run(ledger, PEOPLE[person], step)
            except (ConsentRuleError, SubjectNotFoundError):
                continue  # a refused confirmation writes nothing
            catch_up(ledger.event_log, incremental, batch_size=1)
        rebuilt = ConsentStatusView(rebuilt_db)
        rebuild(ledger.event_log, rebuilt)

        for identifier in PEOPLE:
            subject = ledger.find_subject(identifier, business_id=BUSINESS)
            if subject is None:
                continue
            record = ledger.books.consent_record(subject)
            effects = visible(record.effects(), END_OF_TIME, END_OF_TIME)
            for key in KEYS:
                folded = base_state(effects, *key)
                assert incremental.consent(subject, *key) == folded, (identifier, key)
                assert rebuilt.consent(subject, *key) == folded, (identifier, key)
            platform = record.platform(END_OF_TIME, END_OF_TIME)
            assert sorted(incremental.platform(subject), key=_sender) == platform
            assert sorted(rebuilt.platform(subject), key=_sender) == platform
        for view in (incremental, rebuilt):  # and verify finds nothing to object to
            verification = ledger.verify(views=view_checks([view], ledger.event_log))
            assert verification.ok, verification.problem
    finally:
        incremental_db.close()
        rebuilt_db.close()
        ledger.close()


def _sender(state: object) -> str:
    return getattr(state, "sender", None) or ""


@given(story=st.lists(steps(), min_size=1, max_size=8))
def test_check_at_any_moment_equals_the_reference_model(
    shared_ledger: ConsentLedger, story: list[Step]
) -> None:
    """For random decisions, `check --at T` answers what the reference model says at T."""
    identifier = f"email:checked{next(COUNTER)}@example.com"
    model = Model()
    for step in story:
        try:
            recorded = run(shared_ledger, identifier, step)
        except (ConsentRuleError, SubjectNotFoundError):
            continue
        model.accepted.append((recorded.version, step))

    for at in [*moments(story), max(s.occurred_at for s in story) + timedelta(days=365)]:
        cells = model.cells_at(at)
        for channel, category, sender in KEYS:
            decision = _check(shared_ledger, identifier, at, channel, category, sender)
            cell = cells.get((channel, category, sender))
            assert decision.reason == REASONS[cell.state if cell else None], (
                at,
                channel,
                category,
                sender,
            )
            assert decision.event_version == (cell.version if cell else None)


def _check(
    ledger: ConsentLedger,
    identifier: str,
    at: datetime,
    channel: str,
    category: str,
    sender: str | None,
) -> Decision:
    return ledger.check(
        identifier,
        business_id=BUSINESS,
        channel=channel,
        category=category,
        sender=sender,
        at=at,
        policy="consent-only",
    )


COUNTER = iter(range(10**9))
