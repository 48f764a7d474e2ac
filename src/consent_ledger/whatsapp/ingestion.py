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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from consent_ledger.exceptions import (
    ConsentLedgerError,
    IdentityConflictError,
    InvalidInputError,
    KeyMaterialError,
)
from consent_ledger.model.commands import (
    Evidence,
    OptIn,
    OptOut,
    RecordPlatformPreference,
    RecordSignal,
)
from consent_ledger.model.identifiers import Identifier, IdentifierKind
from consent_ledger.model.status import State
from consent_ledger.model.taxonomy import Channel, Method, TemplateCategory
from consent_ledger.model.values import Provenance
from consent_ledger.whatsapp.bodies import read_payloads
from consent_ledger.whatsapp.keywords import KeywordKind, Keywords, Scope
from consent_ledger.whatsapp.parser import ParseResult, Problem, parse
from consent_ledger.whatsapp.report import IngestReport, Outcome
from consent_ledger.whatsapp.signals import (
    CategoryUpdateStage,
    DeliveryError,
    IdentityChange,
    IdentityChanged,
    InboundMessage,
    MarketingPreference,
    TemplateCategoryUpdate,
    WhatsAppUser,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from uuid import UUID

    from consent_ledger.application.catalogue import BusinessInfo
    from consent_ledger.application.recording import Recorded
    from consent_ledger.model.history import SubjectHistory, SubjectStatus
    from consent_ledger.whatsapp.signals import AnySignal

PLATFORM_ACTOR = "platform:whatsapp"


class Ledger(Protocol):
    """What ingestion needs of a ledger (:class:`consent_ledger.ConsentLedger` is one)."""

    def record_once(
        self, command: OptIn | OptOut | RecordPlatformPreference | RecordSignal, *, signal: str
    ) -> Recorded | None:
        """Record a command for a signal, at most once; None if the signal was seen."""

    def note_once(self, signal: str) -> bool:
        """Remember a signal that records nothing; False if it was seen."""

    def get_business(self, business_id: str) -> BusinessInfo:
        """The business, or BusinessNotFoundError."""

    def link_identifiers(
        self,
        business_id: str,
        identifiers: Sequence[Identifier],
        *,
        provenance: Provenance,
        evidence: Evidence | None = None,
    ) -> list[Identifier]:
        """Link identifiers to the one person some of them find; the ones linked now."""

    def find_subject(self, identifier: Identifier | str, *, business_id: str) -> UUID | None:
        """The subject an identifier finds, if any."""

    def get_history(self, identifier: Identifier | str, *, business_id: str) -> SubjectHistory:
        """A person's events, personal data opened."""

    def get_status(self, identifier: Identifier | str, *, business_id: str) -> SubjectStatus:
        """A person's consent now."""

    def set_template_category(  # noqa: PLR0913 (as the catalogue takes it)
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        *,
        effective_at: datetime | None = None,
        source: str = "operator",
        previous: TemplateCategory | str | None = None,
        platform_template_id: str | None = None,
        signal: str | None = None,
    ) -> bool:
        """Record a template's category from a moment on; False for a signal seen."""

    def announce_template_category(  # noqa: PLR0913 (as the catalogue takes it)
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        *,
        previous: TemplateCategory | str | None,
        effective_at: datetime | None,
        platform_template_id: str | None = None,
        signal: str | None = None,
    ) -> bool:
        """Record an announced change of category; False for a signal seen."""


def ingest_whatsapp(
    ledger: Ledger, body: object, *, business_id: str, keywords: Keywords | None = None
) -> IngestReport:
    """Take every item of one webhook body; unreadable items are rejected, the rest taken.

    Each item stands alone: one that cannot be read, or that the ledger refuses, is
    reported in :attr:`IngestReport.rejected` with its path, and the others are taken.
    """
    ledger.get_business(business_id)  # before any item is taken (or noted as seen)
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
                _plan(self.ledger, signal, self.business_id)
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

Command = OptIn | OptOut | RecordPlatformPreference | RecordSignal


@dataclass(frozen=True)
class _Step:
    """What one signal is to do: record a command, change a template, or be noted."""

    action: str
    detail: str
    command: Command | None = None
    change_template: Callable[[], bool] | None = None


def _take(ledger: Ledger, signal: AnySignal, business_id: str) -> Outcome:
    """What the signal does; then the person's identifiers it names are linked.

    Linking is its own transaction, idempotent: a redelivered item links what a crash
    between the two may have left unlinked.
    """
    outcome = _carry_out(ledger, signal, _plan(ledger, signal, business_id))
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
                method=Method.PLATFORM, actor=PLATFORM_ACTOR, occurred_at=_when(signal)
            ),
            evidence=_evidence(signal.evidence),
        )
    except (IdentityConflictError, KeyMaterialError) as e:
        return dataclasses.replace(outcome, detail=f"{outcome.detail}; for review: {e}")
    if not linked:
        return outcome
    kinds = ", ".join(str(identifier.kind) for identifier in linked)
    return dataclasses.replace(outcome, detail=f"{outcome.detail}; now also found by {kinds}")


def _carry_out(ledger: Ledger, signal: AnySignal, step: _Step) -> Outcome:
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


def _when(signal: AnySignal) -> datetime:
    return signal.occurred_at or datetime.now(UTC)


def _plan(ledger: Ledger, signal: AnySignal, business_id: str) -> _Step:
    """What the signal is to do, worked out by reading only.

    Raises:
        ConsentLedgerError: the ledger would refuse it (an unknown business, say).
        ValidationError: what it says cannot make a valid command.
    """
    match signal:
        case InboundMessage():
            return _inbound(ledger, signal, business_id)
        case MarketingPreference():
            command = _preference(ledger, signal, business_id, stopped=signal.stopped)
            action = "marketing-stopped" if signal.stopped else "marketing-resumed"
            detail = f"for business number {signal.sender.phone_number_id}"
            return _Step(action, detail, command)
        case DeliveryError() if signal.platform_marketing_stop:
            command = _preference(ledger, signal, business_id, stopped=True, actor=PLATFORM_ACTOR)
            detail = f"error {signal.code}: marketing stopped on WhatsApp (evidence)"
            return _Step("marketing-stopped", detail, command)
        case DeliveryError():
            block = "; may hide a block (inferred)" if signal.inferred_block else ""
            detail = f"delivery signal {signal.code} ({signal.kind}), not a consent change{block}"
            noted = _signal_command(ledger, signal, business_id, str(signal.kind), detail)
            return _Step("noted", detail, noted)
        case TemplateCategoryUpdate():
            return _template(ledger, signal, business_id)
        case IdentityChanged():
            return _identity(ledger, signal, business_id)


def _identity(ledger: Ledger, signal: IdentityChanged, business_id: str) -> _Step:
    """A new number or user id: kept in the person's record; the new one is linked after.

    Consent follows the person, not the number: once linked, the new number finds the
    same record. The old one stays linked too (a record never forgets a name), and a
    number given up may one day be someone else's: that is what the operator reviews.
    """
    known = [
        identifier
        for identifier in signal.user.identifiers()
        if ledger.find_subject(identifier, business_id=business_id) is not None
    ]
    what = "number" if signal.change is IdentityChange.NUMBER else "business-scoped user id"
    if not known:
        return _Step("noted", f"changed their WhatsApp {what}; not in the ledger, nothing to link")
    detail = f"changed their WhatsApp {what}: their consent follows them to the new one"
    if signal.change is IdentityChange.NUMBER:
        detail += "; for review: the old number may be given to someone else one day"
    command = RecordSignal(
        business_id=business_id,
        identifier=known[0],
        signal=f"{signal.change}-changed",
        detail=detail,
        sender=signal.sender.phone_number_id,
        method=Method.PLATFORM,
        actor=PLATFORM_ACTOR,
        occurred_at=signal.occurred_at,
        evidence=_evidence(signal.evidence),
    )
    action = "for-review" if signal.change is IdentityChange.NUMBER else "identity-changed"
    return _Step(action, detail, command)


def _template(ledger: Ledger, signal: TemplateCategoryUpdate, business_id: str) -> _Step:
    """A completed change of category is in force from then on; an impending one is noted."""
    name, language = signal.template_name, signal.template_language
    before_text = signal.previous_category or "no category recorded"
    detail = f"template {name} ({language}): {before_text} -> {signal.new_category}"
    try:
        category = TemplateCategory(signal.new_category.upper())
        previous = signal.previous_category
        before = TemplateCategory(previous.upper()) if previous else None
    except ValueError:
        return _Step("noted", f"{detail}: not a template category the ledger knows")
    if signal.stage is CategoryUpdateStage.COMPLETED:
        return _Step(
            "template-category-changed",
            detail,
            change_template=lambda: ledger.set_template_category(
                business_id,
                name,
                language,
                category,
                effective_at=signal.occurred_at,
                source="whatsapp",
                previous=before,
                platform_template_id=signal.template_id,
                signal=signal.idempotency_key,
            ),
        )
    return _Step(
        "template-category-announced",
        detail,
        change_template=lambda: ledger.announce_template_category(
            business_id,
            name,
            language,
            category,
            previous=before,
            effective_at=signal.effective_at,
            platform_template_id=signal.template_id,
            signal=signal.idempotency_key,
        ),
    )


def _inbound(ledger: Ledger, signal: InboundMessage, business_id: str) -> _Step:
    keyword = signal.keyword
    if keyword is None:
        detail = f"a {signal.message_type} message, not a keyword"
        command = _signal_command(ledger, signal, business_id, "message", detail, evidence=False)
        return _Step("noted", detail, command)
    language = keyword.language or " or ".join(keyword.languages)
    said = f"replied {keyword.word!r}" + (f" ({language})" if language else "")
    rules = f"classified by keyword rules {keyword.version}"  # which list decided, for audits
    if keyword.kind is KeywordKind.OPT_OUT:
        opt_out = OptOut(
            business_id=business_id,
            identifier=_identifier(ledger, signal.user, business_id),
            channel=None if keyword.scope is Scope.ALL_CHANNELS else Channel.WHATSAPP,
            categories=keyword.categories,
            sender=signal.sender.phone_number_id if keyword.scope is Scope.SENDER else None,
            method=Method.WHATSAPP_THREAD,
            occurred_at=signal.occurred_at,
            evidence=_evidence(signal.evidence, note=rules),
            reason=said,
        )
        return _Step("opted-out", said, opt_out)
    if keyword.kind is KeywordKind.OPT_IN:
        regrant = _regrant(ledger, signal, business_id, f"{said}; {rules}")
        if regrant is not None:
            return _Step("re-granted", said, regrant)
        detail = f"{said}: no earlier WhatsApp opt-in to restore"
        name, action = "opt-in-keyword", "refused"
    elif keyword.kind is KeywordKind.HELP:
        detail = f"{said}: asked for help, nothing changes"
        name, action = "help", "noted"
    else:
        detail = f"{said} inside a longer message"
        name, action = "possible-opt-out", "for-review"
    command = _signal_command(ledger, signal, business_id, name, detail, note=rules)
    return _Step(action, detail, command)


def _regrant(ledger: Ledger, signal: InboundMessage, business_id: str, said: str) -> OptIn | None:
    """The opt-in that restores the person's latest WhatsApp grant, if it is still valid.

    It grants what that opt-in granted, under its notice, for its sender, until its expiry,
    on its legal basis and in its jurisdiction: START brings back that consent, no more.
    """
    identifier = _identifier(ledger, signal.user, business_id)
    if ledger.find_subject(identifier, business_id=business_id) is None:
        return None
    history = ledger.get_history(identifier, business_id=business_id)
    grants = [
        entry
        for entry in history.entries
        if entry.event_type == "OptedIn" and entry.channel == Channel.WHATSAPP and entry.notice
    ]
    if not grants:
        return None
    latest = grants[-1]
    if latest.expires_at is not None and latest.expires_at <= _when(signal):
        return None
    assert latest.notice is not None  # noqa: S101 (filtered above)
    return OptIn(
        business_id=business_id,
        identifier=identifier,
        channel=Channel.WHATSAPP,
        categories=latest.granted,
        notice=str(latest.notice),
        sender=latest.sender,
        expires_at=latest.expires_at,
        jurisdiction=latest.jurisdiction,
        **({"legal_basis": latest.legal_basis} if latest.legal_basis else {}),
        method=Method.WHATSAPP_THREAD,
        occurred_at=signal.occurred_at,
        evidence=_evidence(signal.evidence, note=f"restores the opt-in #{latest.version}; {said}"),
    )


def _preference(
    ledger: Ledger,
    signal: MarketingPreference | DeliveryError,
    business_id: str,
    *,
    stopped: bool,
    actor: str = "subject",
) -> RecordPlatformPreference:
    user = signal.user if isinstance(signal, MarketingPreference) else signal.recipient
    return RecordPlatformPreference(
        business_id=business_id,
        identifier=_identifier(ledger, user, business_id),
        stopped=stopped,
        sender=signal.sender.phone_number_id,
        method=Method.PLATFORM,
        actor=actor,
        occurred_at=signal.occurred_at,
        evidence=_evidence(signal.evidence),
    )


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


def _signal_command(  # noqa: PLR0913 (a signal has this many facts)
    ledger: Ledger,
    signal: InboundMessage | DeliveryError,
    business_id: str,
    name: str,
    detail: str,
    *,
    evidence: bool = True,
    note: str | None = None,
) -> RecordSignal:
    """What keeps in the person's record what the platform reported: evidence, not consent."""
    user = signal.user if isinstance(signal, InboundMessage) else signal.recipient
    return RecordSignal(
        business_id=business_id,
        identifier=_identifier(ledger, user, business_id),
        signal=name,
        detail=detail,
        code=signal.code if isinstance(signal, DeliveryError) else None,
        sender=signal.sender.phone_number_id,
        method=Method.WHATSAPP_THREAD if isinstance(signal, InboundMessage) else Method.PLATFORM,
        actor="subject" if isinstance(signal, InboundMessage) else PLATFORM_ACTOR,
        occurred_at=signal.occurred_at,
        evidence=_evidence(signal.evidence, note=note) if evidence else None,
    )


def _note(ledger: Ledger, signal: AnySignal, detail: str, action: str = "noted") -> Outcome:
    if not ledger.note_once(signal.idempotency_key):
        return Outcome(signal.path, signal.signal, "duplicate", detail)
    return Outcome(signal.path, signal.signal, action, detail)


def _identifier(ledger: Ledger, user: WhatsAppUser, business_id: str) -> Identifier:
    """The identifier the ledger knows the person by.

    The first of the payload's identifiers (number, wa_id, BSUIDs) under which the
    business has a record; else the number a wa_id spells (most are the number in
    international form), if the business knows it; else the payload's first identifier,
    under which a new record starts (the item's other identifiers are linked to it
    afterwards).
    """
    candidates = list(user.identifiers())
    if user.phone is None and user.wa_id is not None and user.wa_id.isdigit():
        candidates.append(Identifier.parse(f"+{user.wa_id}"))
    for candidate in candidates:
        if ledger.find_subject(candidate, business_id=business_id) is not None:
            return candidate
    return candidates[0]


def _evidence(body: str, *, note: str | None = None) -> Evidence:
    """The webhook item as a sealed file; never refused for its size (an opt-out is kept)."""
    return Evidence.from_bytes(
        body.encode(), file_name="whatsapp-webhook.json", media_type="application/json", text=note
    )
