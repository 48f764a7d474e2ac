"""Properties: what the ledger reports equals a naive reference model, at every moment."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from consent_ledger import (
    ChangeCategories,
    ConfirmOptIn,
    ConsentLedger,
    ConsentRuleError,
    OptIn,
    OptOut,
    Recorded,
    RecordPlatformPreference,
    SubjectNotFoundError,
)

from .conftest import BUSINESS
from .strategies import NOTICES, Model, Step, steps

if TYPE_CHECKING:
    from datetime import datetime

PEOPLE = itertools.count()


def run(ledger: ConsentLedger, identifier: str, step: Step) -> Recorded:
    common = {
        "business_id": BUSINESS,
        "identifier": identifier,
        "sender": step.sender,
        "method": "api",
        "occurred_at": step.occurred_at,
    }
    if step.kind == "opt-in":
        assert step.channel is not None
        return ledger.opt_in(
            OptIn(
                **common,
                channel=step.channel,
                categories=step.granted,
                notice=NOTICES[step.channel],
                awaiting_confirmation=step.pending,
                expires_at=step.expires_at,
            )
        )
    if step.kind == "confirm":
        return ledger.confirm_opt_in(
            ConfirmOptIn(**common, channel=step.channel, categories=step.granted)
        )
    if step.kind == "opt-out":
        return ledger.opt_out(OptOut(**common, channel=step.channel, categories=step.withdrawn))
    if step.kind in ("stop", "resume"):
        return ledger.record_platform_preference(
            RecordPlatformPreference(**common, stopped=step.kind == "stop")
        )
    assert step.channel is not None
    return ledger.change_categories(
        ChangeCategories(
            **common,
            channel=step.channel,
            grant=step.granted,
            withdraw=step.withdrawn or (),
            notice=NOTICES[step.channel] if step.granted else None,
            expires_at=step.expires_at,
        )
    )


def moments(decisions: list[Step]) -> list[datetime]:
    """Every moment where the answer may change, and either side of it."""
    marks = {s.occurred_at for s in decisions} | {s.expires_at for s in decisions if s.expires_at}
    return sorted({m + d for m in marks for d in (-timedelta(seconds=1), timedelta(0))})


def assert_status_matches(
    ledger: ConsentLedger,
    identifier: str,
    model: Model,
    at: datetime,
    known_at: datetime | None = None,
    recorded: int | None = None,
) -> None:
    status = ledger.get_status(identifier, business_id=BUSINESS, at=at, known_at=known_at)
    reported = {
        (c.channel, c.category, c.sender): (c.state, c.since, c.expires_at, c.event_version)
        for c in status.consents
    }
    cells = model.cells_at(at, recorded)
    expected = {
        key: (cells[key].state, cells[key].since, cells[key].expires_at, cells[key].version)
        for key in model.touched(at, recorded)
    }
    assert reported == expected, f"at {at.isoformat()}"
    platform = {p.sender: (p.stopped, p.since, p.event_version) for p in status.platform}
    assert platform == model.platform_at(at, recorded), f"platform at {at.isoformat()}"


@given(decisions=st.lists(steps(), min_size=1, max_size=8))
def test_status_equals_the_reference_model_at_every_moment(
    shared_ledger: ConsentLedger, decisions: list[Step]
) -> None:
    """For random decisions, `status --at T` equals the reference model at every T."""
    identifier = f"email:person{next(PEOPLE)}@example.com"
    model = Model()
    recorded_at: list[tuple[int, datetime]] = []
    for step in decisions:
        acceptable = step.kind != "confirm" or model.pending_at(step)
        try:
            recorded = run(shared_ledger, identifier, step)
        except (ConsentRuleError, SubjectNotFoundError):
            assert not acceptable, f"refused {step}"
            continue
        assert acceptable, f"accepted {step}"
        model.accepted.append((recorded.version, step))
        recorded_at.append((recorded.version, recorded.recorded_at))

    if not model.accepted:
        assert shared_ledger.find_subject(identifier, business_id=BUSINESS) is None
        return
    for at in moments(decisions):
        assert_status_matches(shared_ledger, identifier, model, at)
    # What the ledger knew just after each write, about every moment.
    for version, known_at in recorded_at:
        for at in moments(decisions)[::3]:
            assert_status_matches(shared_ledger, identifier, model, at, known_at, version)
