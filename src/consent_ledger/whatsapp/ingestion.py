"""Ingesting WhatsApp webhooks: each item of a body becomes what it means for consent, once.

* An opt-out keyword (STOP, BASTA, ...) records an opt-out from the person, with the item as
  sealed evidence; a marketing-stop button withdraws the marketing categories only.
* An opt-in keyword (START, UNSTOP) grants again what the person's latest WhatsApp opt-in
  granted, under the same notice, only if there is one and it has not expired.
* A ``user_preferences`` stop or resume records the platform marketing stop or resume for
  the business number; a 131050 delivery error is evidence of such a stop and records it.
* HELP, an opt-out word inside a longer message (for review), other delivery errors
  (131049, 131047, 131026 and the rest: signals, never consent changes), other messages
  and template category updates are remembered as seen and reported; they change nothing.

Every item is taken once: its id (a WhatsApp message id, or a hash of the item) is kept
as a keyed hash in the same transaction as the events it records, so a webhook delivered
twice changes nothing the second time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import ValidationError

from consent_ledger.exceptions import (
    ConsentLedgerError,
    IdentityConflictError,
    InvalidInputError,
    KeyMaterialError,
    UnknownCategoryError,
)
from consent_ledger.model.commands import (
    OptOut,
)
from consent_ledger.model.identifiers import Identifier, IdentifierKind
from consent_ledger.model.status import State
from consent_ledger.model.taxonomy import CATEGORIES, Method, unknown_among
from consent_ledger.model.values import Provenance
from consent_ledger.whatsapp.bodies import read_payloads
from consent_ledger.whatsapp.parser import ParseResult, Problem, parse
from consent_ledger.whatsapp.report import IngestReport, Outcome
from consent_ledger.whatsapp.signals import (
    DeliveryError,
    IdentityChanged,
    InboundMessage,
    MarketingPreference,
)
from consent_ledger.whatsapp.steps import (
    PLATFORM_ACTOR,
    Command,
    Step,
    item_evidence,
    occurred_or_now,
    plan,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from consent_ledger.whatsapp.keywords import Keywords
    from consent_ledger.whatsapp.protocol import Ledger
    from consent_ledger.whatsapp.signals import AnySignal


def ingest_whatsapp(
    ledger: Ledger, body: object, *, business_id: str, keywords: Keywords | None = None
) -> IngestReport:
    """Take every item of one webhook body; unreadable items are rejected, the rest taken.

    Each item stands alone: one that cannot be read, or that the ledger refuses, is
    reported in :attr:`IngestReport.rejected` with its path, and the others are taken.
    """
    ledger.get_business(business_id)  # before any item is taken (or noted as seen)
    _check_keyword_categories(ledger, business_id, keywords)
    batch = _Batch(ledger, business_id, keywords)
    batch.record(parse(body, keywords), where="")
    return batch.report


def ingest_whatsapp_lines(
    ledger: Ledger,
    lines: Iterable[str],
    *,
    business_id: str,
    keywords: Keywords | None = None,
    strict: bool = False,
) -> IngestReport:
    """Take every body of a file (JSON Lines, or a JSON array); see :func:`ingest_whatsapp`.

    With ``strict``, every body and every item is read and checked first (what it would
    record is worked out, nothing written), and anything wrong fails the run before
    anything is recorded.

    Raises:
        BusinessNotFoundError: the business is not registered (nothing is taken).
        InvalidInputError: ``strict`` and something could not be read or would be refused.
    """
    ledger.get_business(business_id)  # before any item is taken (or noted as seen)
    _check_keyword_categories(ledger, business_id, keywords)
    batch = _Batch(ledger, business_id, keywords)
    # Each body parsed once; with strict, all of them before anything is recorded.
    parsed: Iterable[tuple[str, Problem | ParseResult]] = (
        (str(position), body if isinstance(body, Problem) else parse(body, keywords))
        for position, body in read_payloads(lines)
    )
    if strict:
        parsed = list(parsed)
        _check_all(batch, parsed)
    for where, result in parsed:
        if isinstance(result, Problem):
            batch.report.rejected.append(_located(where, result))
        else:
            batch.record(result, where=where)
    return batch.report


def _check_keyword_categories(ledger: Ledger, business_id: str, keywords: Keywords | None) -> None:
    """Refuse keyword rules that name categories the business does not have (nor had).

    Before anything is taken: a STOP that could not be recorded would be a withdrawal lost.

    Raises:
        UnknownCategoryError: names the rule, the category and the business's categories.
    """
    named = [
        (rule.word, name)
        for rule in (keywords.rules if keywords is not None else ())
        for name in rule.categories or ()
        if name not in CATEGORIES
    ]
    if not named:
        return
    categories = ledger.list_categories(business_id)
    known = {c.name for c in categories}
    for word, name in named:
        if name not in known:
            msg = f"keyword rule {word!r}: {unknown_among(name, categories)}"
            raise UnknownCategoryError(msg)


def _check_all(batch: _Batch, parsed: list[tuple[str, Problem | ParseResult]]) -> None:
    """Raise, naming the first, if any body or item is unreadable or would be refused."""
    problems = [
        _located(where, problem)
        for where, result in parsed
        for problem in ([result] if isinstance(result, Problem) else result.problems)
    ]
    for where, result in parsed:
        if isinstance(result, ParseResult):
            problems.extend(batch.refusals(result, where=where))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        msg = f"nothing ingested: {problems[0]}{more}"
        raise InvalidInputError(msg)


@dataclass
class _Batch:
    ledger: Ledger
    business_id: str
    keywords: Keywords | None
    report: IngestReport = field(default_factory=IngestReport)

    def record(self, parsed: ParseResult, *, where: str) -> None:
        """Take each signal; one the ledger refuses is rejected, the others still taken."""
        self.report.rejected.extend(_located(where, problem) for problem in parsed.problems)
        self.report.outcomes.extend(
            Outcome(_located_path(where, item.path), None, "ignored", item.reason)
            for item in parsed.ignored
        )
        for signal in parsed.signals:
            try:
                outcome = _take(self.ledger, signal, self.business_id)
            except (ConsentLedgerError, ValidationError) as e:
                self.report.rejected.append(_located(where, _refused(signal, e)))
                continue
            outcome = dataclasses.replace(outcome, path=_located_path(where, outcome.path))
            self.report.outcomes.append(outcome)

    def refusals(self, parsed: ParseResult, *, where: str) -> list[str]:
        """Why each signal would be refused, worked out without writing anything."""
        refused = []
        for signal in parsed.signals:
            try:
                plan(self.ledger, signal, self.business_id)
            except (ConsentLedgerError, ValidationError) as e:
                refused.append(_located(where, _refused(signal, e)))
        return refused


def _refused(signal: AnySignal, error: ConsentLedgerError | ValidationError) -> Problem:
    if isinstance(error, ValidationError):
        reason = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or 'item'}: {item['msg']}" for item in error.errors()
        )
        return Problem(signal.path, f"cannot be recorded: {reason}")
    return Problem(signal.path, f"cannot be recorded: {error}")


def _located(where: str, problem: Problem) -> str:
    return f"{where}: {problem}" if where else str(problem)


def _located_path(where: str, path: str) -> str:
    return f"{where}: {path}" if where else path


# One signal: what it is to do is worked out first (reading only), then done.


def _take(ledger: Ledger, signal: AnySignal, business_id: str) -> Outcome:
    """What the signal does; then the person's identifiers it names are linked.

    Linking is its own transaction, idempotent: a redelivered item links what a crash
    between the two may have left unlinked.
    """
    outcome = _carry_out(ledger, signal, plan(ledger, signal, business_id))
    identities = _identities(signal)
    if _unknown_username(outcome, identities):
        outcome = dataclasses.replace(outcome, detail=f"{outcome.detail}; {_UNKNOWN_USERNAME}")
    if len(identities) < 2:  # noqa: PLR2004
        return outcome
    try:
        linked = ledger.link_identifiers(
            business_id,
            identities,
            provenance=Provenance(
                method=Method.PLATFORM, actor=PLATFORM_ACTOR, occurred_at=occurred_or_now(signal)
            ),
            evidence=item_evidence(signal.evidence),
        )
    except (IdentityConflictError, KeyMaterialError) as e:
        return dataclasses.replace(outcome, detail=f"{outcome.detail}; for review: {e}")
    if not linked:
        return outcome
    kinds = ", ".join(str(identifier.kind) for identifier in linked)
    return dataclasses.replace(outcome, detail=f"{outcome.detail}; now also found by {kinds}")


def _carry_out(ledger: Ledger, signal: AnySignal, step: Step) -> Outcome:
    if isinstance(step.command, OptOut):
        outcome = _record(ledger, signal, step.command, step.action, step.detail)
        return _superseded(ledger, step.command, outcome)
    if step.command is not None:
        return _record(ledger, signal, step.command, step.action, step.detail)
    if step.change_template is not None:
        done = step.change_template()
        return Outcome(
            signal.path, signal.signal, step.action if done else "duplicate", step.detail
        )
    return _note(ledger, signal, step.detail, step.action)


def _superseded(ledger: Ledger, command: OptOut, outcome: Outcome) -> Outcome:
    """The outcome of a recorded opt-out, saying so if grants that occurred after it stand.

    A STOP delivered late (or replayed from an old export) is recorded where it occurred:
    an opt-in after it still wins, and the report must not say the person was opted out.
    """
    recorded = outcome.recorded
    if recorded is None or recorded.event_type != "OptedOut":
        return outcome
    status = ledger.get_status(command.identifier, business_id=command.business_id)
    standing = [
        state
        for state in status.consents
        if state.state in {State.GRANTED, State.PENDING}
        and state.since > command.occurred_at
        and command.channel in {None, state.channel}
        and (command.categories is None or state.category in command.categories)
        and command.sender in {None, state.sender}
    ]
    if not standing:
        return outcome
    later = ", ".join(
        f"{state.category} (#{state.event_version} {state.event_type})" for state in standing
    )
    detail = f"{outcome.detail}: recorded; an opt-in after it still stands: {later}"
    return dataclasses.replace(outcome, action="superseded", detail=detail)


_UNKNOWN_USERNAME = (
    "for review: a new record was started for a business-scoped user id the ledger had "
    "never seen; if this person is known by their number, that number's consent still "
    "stands until the two are linked"
)


def _unknown_username(outcome: Outcome, identities: tuple[Identifier, ...]) -> bool:
    """Whether the item started a record under business-scoped ids alone (no number)."""
    return (
        outcome.recorded is not None
        and outcome.recorded.new_subject
        and all(identifier.kind is IdentifierKind.BSUID for identifier in identities)
    )


def _identities(signal: AnySignal) -> tuple[Identifier, ...]:
    """Every identifier the signal names one person by (old and new, for a change)."""
    match signal:
        case InboundMessage() | MarketingPreference():
            return signal.user.identifiers()
        case DeliveryError():
            return signal.recipient.identifiers()
        case IdentityChanged():
            return tuple(
                dict.fromkeys((*signal.user.identifiers(), *signal.new_user.identifiers()))
            )
    return ()


def _record(
    ledger: Ledger,
    signal: AnySignal,
    command: Command,
    action: str,
    detail: str,
) -> Outcome:
    try:
        recorded = ledger.record_once(command, signal=signal.idempotency_key)
    except ConsentLedgerError as e:  # e.g. the notice of the grant to restore is gone
        return _note(ledger, signal, f"{detail}: {e}", "refused")
    if recorded is None:
        return Outcome(signal.path, signal.signal, "duplicate", detail)
    return Outcome(signal.path, signal.signal, action, detail, recorded)


def _note(ledger: Ledger, signal: AnySignal, detail: str, action: str = "noted") -> Outcome:
    if not ledger.note_once(signal.idempotency_key):
        return Outcome(signal.path, signal.signal, "duplicate", detail)
    return Outcome(signal.path, signal.signal, action, detail)
