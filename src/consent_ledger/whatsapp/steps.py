"""What each WhatsApp signal is to do, worked out by reading the ledger only.

:func:`plan` turns a signal into a :class:`Step`: a command to record (an opt-out, a
re-grant, a marketing stop, a signal kept as evidence), a template's change of category,
or a note. Nothing is written here: ingestion carries the steps out, and with ``--strict``
plans every item first to refuse bad input before anything is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from consent_ledger.model.commands import (
    Evidence,
    OptIn,
    OptOut,
    RecordPlatformPreference,
    RecordSignal,
)
from consent_ledger.model.identifiers import Identifier
from consent_ledger.model.taxonomy import CATEGORIES, Channel, Method, TemplateCategory
from consent_ledger.whatsapp.keywords import (
    MARKETING_CATEGORIES,
    Keyword,
    KeywordKind,
    Scope,
    marketing_categories,
)
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
    from collections.abc import Callable

    from consent_ledger.whatsapp.protocol import Ledger
    from consent_ledger.whatsapp.signals import AnySignal

PLATFORM_ACTOR = "platform:whatsapp"

Command = OptIn | OptOut | RecordPlatformPreference | RecordSignal


@dataclass(frozen=True)
class Step:
    """What one signal is to do: record a command, change a template, or be noted."""

    action: str
    detail: str
    command: Command | None = None
    change_template: Callable[[], bool] | None = None


def occurred_or_now(signal: AnySignal) -> datetime:
    """When the signal occurred, by the platform's clock (now, if it gave no time)."""
    return signal.occurred_at or datetime.now(UTC)


def plan(ledger: Ledger, signal: AnySignal, business_id: str) -> Step:
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
            return Step(action, detail, command)
        case DeliveryError() if signal.platform_marketing_stop:
            command = _preference(ledger, signal, business_id, stopped=True, actor=PLATFORM_ACTOR)
            detail = f"error {signal.code}: marketing stopped on WhatsApp (evidence)"
            return Step("marketing-stopped", detail, command)
        case DeliveryError():
            block = "; may hide a block (inferred)" if signal.inferred_block else ""
            detail = f"delivery signal {signal.code} ({signal.kind}), not a consent change{block}"
            noted = _signal_command(ledger, signal, business_id, str(signal.kind), detail)
            return Step("noted", detail, noted)
        case TemplateCategoryUpdate():
            return _template(ledger, signal, business_id)
        case IdentityChanged():
            return _identity(ledger, signal, business_id)


def _identity(ledger: Ledger, signal: IdentityChanged, business_id: str) -> Step:
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
        return Step("noted", f"changed their WhatsApp {what}; not in the ledger, nothing to link")
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
        evidence=item_evidence(signal.evidence),
    )
    action = "for-review" if signal.change is IdentityChange.NUMBER else "identity-changed"
    return Step(action, detail, command)


def _template(ledger: Ledger, signal: TemplateCategoryUpdate, business_id: str) -> Step:
    """A completed change of category is in force from then on; an impending one is noted."""
    name, language = signal.template_name, signal.template_language
    before_text = signal.previous_category or "no category recorded"
    detail = f"template {name} ({language}): {before_text} -> {signal.new_category}"
    try:
        category = TemplateCategory(signal.new_category.upper())
        previous = signal.previous_category
        before = TemplateCategory(previous.upper()) if previous else None
    except ValueError:
        return Step("noted", f"{detail}: not a template category the ledger knows")
    if signal.stage is CategoryUpdateStage.COMPLETED:
        return Step(
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
    return Step(
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


def _inbound(ledger: Ledger, signal: InboundMessage, business_id: str) -> Step:
    keyword = signal.keyword
    if keyword is None:
        detail = f"a {signal.message_type} message, not a keyword"
        command = _signal_command(ledger, signal, business_id, "message", detail, evidence=False)
        return Step("noted", detail, command)
    language = keyword.language or " or ".join(keyword.languages)
    said = f"replied {keyword.word!r}" + (f" ({language})" if language else "")
    rules = f"classified by keyword rules {keyword.version}"  # which list decided, for audits
    if keyword.kind is KeywordKind.OPT_OUT:
        opt_out = OptOut(
            business_id=business_id,
            identifier=_identifier(ledger, signal.user, business_id),
            channel=None if keyword.scope is Scope.ALL_CHANNELS else Channel.WHATSAPP,
            categories=_withdrawn(ledger, keyword, business_id),
            sender=signal.sender.phone_number_id if keyword.scope is Scope.SENDER else None,
            method=Method.WHATSAPP_THREAD,
            occurred_at=signal.occurred_at,
            evidence=item_evidence(signal.evidence, note=rules),
            reason=said,
        )
        return Step("opted-out", said, opt_out)
    if keyword.kind is KeywordKind.OPT_IN:
        regrant = _regrant(ledger, signal, business_id, f"{said}; {rules}")
        if regrant is not None:
            return Step("re-granted", said, regrant)
        detail = f"{said}: no earlier WhatsApp opt-in to restore"
        name, action = "opt-in-keyword", "refused"
    elif keyword.kind is KeywordKind.HELP:
        detail = f"{said}: asked for help, nothing changes"
        name, action = "help", "noted"
    else:
        detail = f"{said} inside a longer message"
        name, action = "possible-opt-out", "for-review"
    command = _signal_command(ledger, signal, business_id, name, detail, note=rules)
    return Step(action, detail, command)


def _withdrawn(ledger: Ledger, keyword: Keyword, business_id: str) -> tuple[str, ...] | None:
    """The categories an opt-out keyword withdraws from the business (None: every one).

    Meta's "Stop promotions" (a rule naming the built-in marketing categories) withdraws
    every MARKETING category of the business, the ones it defined included.
    """
    if keyword.categories != MARKETING_CATEGORIES:
        return keyword.categories
    return marketing_categories(ledger.list_categories(business_id))


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
    if latest.expires_at is not None and latest.expires_at <= occurred_or_now(signal):
        return None
    granted = _still_grantable(ledger, business_id, latest.granted)
    if not granted:
        return None
    assert latest.notice is not None  # noqa: S101 (filtered above)
    return OptIn(
        business_id=business_id,
        identifier=identifier,
        channel=Channel.WHATSAPP,
        categories=granted,
        notice=str(latest.notice),
        sender=latest.sender,
        expires_at=latest.expires_at,
        jurisdiction=latest.jurisdiction,
        **({"legal_basis": latest.legal_basis} if latest.legal_basis else {}),
        method=Method.WHATSAPP_THREAD,
        occurred_at=signal.occurred_at,
        evidence=item_evidence(
            signal.evidence, note=f"restores the opt-in #{latest.version}; {said}"
        ),
    )


def _still_grantable(ledger: Ledger, business_id: str, granted: tuple[str, ...]) -> tuple[str, ...]:
    """The categories of ``granted`` the business has not retired since (no new opt-ins)."""
    if all(name in CATEGORIES for name in granted):
        return granted  # built-in ones are never retired
    retired = {c.name for c in ledger.list_categories(business_id) if c.retired}
    return tuple(name for name in granted if name not in retired)


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
        evidence=item_evidence(signal.evidence),
    )


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
        evidence=item_evidence(signal.evidence, note=note) if evidence else None,
    )


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


def item_evidence(body: str, *, note: str | None = None) -> Evidence:
    """The webhook item as a sealed file; never refused for its size (an opt-out is kept)."""
    return Evidence.from_bytes(
        body.encode(), file_name="whatsapp-webhook.json", media_type="application/json", text=note
    )
