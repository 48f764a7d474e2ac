"""Consent receipts: each grant in a person's record as a Kantara Consent Receipt v1.1.

Source: Kantara Initiative, *Consent Receipt Specification* v1.1.0 (2018-02-20,
https://kantarainitiative.org/file-downloads/consent-receipt-specification-v1-1-0/), read
through the JSON schema and example the Kantara Initiative publishes for it:
``github.com/KantaraInitiative/consent-receipt-v-next``, files
``CR_v1_1/kantara-consent-receipt-v1_1-schema.json`` (v1.1.0 draft 6) and
``CR_v1_1/kantara-consent-receipt-v1_1-example.json``. The schema requires ``version``,
``jurisdiction``, ``consentTimestamp`` (an integer: seconds since 1970-01-01 UTC, as in the
example's ``1510592400``), ``collectionMethod``, ``consentReceiptID``, ``piiPrincipalId``,
``piiControllers`` (each with ``piiController``, ``contact``, ``address`` (an object),
``email``, ``phone``), ``policyUrl``, ``services`` (each with ``service`` and ``purposes``,
each purpose with ``consentType``, ``purposeCategory[]``, ``piiCategory[]``,
``termination``, ``thirdPartyDisclosure`` and, when that is true, ``thirdPartyName``),
``sensitive`` and ``spiCat[]``. ``publicKey``, ``language`` (ISO 639-1), ``onBehalf``,
``piiControllerUrl``, ``purpose`` and ``primaryPurpose`` are optional.

One receipt is issued per event that grants consent: every ``OptedIn``, and every
``CategoriesChanged`` that grants categories (a change is a decision to consent too). How
the ledger fills the fields:

* ``consentTimestamp``: when the grant *occurred* (not when it was recorded), in whole
  seconds; the exact times are in the extension.
* ``collectionMethod``: method, collection point and actor (``web-form at
  https://acme.example/checkout``); for a double opt-in, whether it was confirmed.
* ``consentReceiptID``: a UUIDv5 of the ledger id, subject id and event version, so the
  same event always gets the same id.
* ``piiPrincipalId``: the subject id (a random UUID) unless the caller asks to reveal the
  person's identifier, which the master key opens (written as the ledger prints it:
  E.164, or ``kind:value``). A person whose data key is gone keeps the subject id.
* ``piiControllers``: the business, named as the notice the person saw named it.
* ``policyUrl``, ``language``: those of the notice version the person saw.
* ``services``: one service (the event's channel, and sender if narrowed), with one purpose
  per category granted, named by its description (a business's own categories by the one
  it defined); ``termination`` says when the grant ends (opt-out, expiry).
* ``purposeCategory`` follows the category's WhatsApp template category (MARKETING:
  ``6 - Marketing``, UTILITY: ``2 - Contracted Service``, AUTHENTICATION: ``1 - Core
  Function``, names from the specification's purpose category list); ``consentType`` the
  grant's legal basis (consent of any kind: ``EXPLICIT``, soft opt-in: ``IMPLICIT``,
  contract or legitimate interest: ``N/A``).
* ``sensitive`` is false and ``spiCat`` empty: the ledger processes contact identifiers
  only (``piiCategory`` ``2 - Contact``).

The ledger records no contact person, postal address, e-mail or phone for a business, no
privacy policy URL unless the notice has one, no jurisdiction unless the grant names one,
and nothing about disclosure to third parties. Required fields it has no data for read
``"not recorded"`` (the address ``{}``, ``thirdPartyDisclosure`` ``false``: no disclosure
recorded); the extension lists them under ``not_recorded``, so nobody mistakes them for
facts. Optional fields without data (``publicKey``, ``onBehalf``, ``piiControllerUrl``,
``primaryPurpose``) are left out.

A double opt-in (``OptedIn`` awaiting confirmation) gets no second receipt when it is
confirmed: the receipt of the opt-in says, in ``collectionMethod`` and in the extension's
``double_opt_in``, which of its categories an ``OptInConfirmed`` event confirmed and when.
Its Kantara fields otherwise stay those of the opt-in: the consent rests on the notice
shown then.

Each receipt carries the ledger's own references outside the Kantara fields, under the
top-level key ``x-consent-ledger``: ledger, business and subject ids, event version and
type, exact times, notice ``ID@VERSION`` and content hash, so an auditor can tie the
receipt to the log (and to the log's signed checkpoints).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from consent_ledger.exceptions import InvalidInputError
from consent_ledger.model.identifiers import Identifier, address
from consent_ledger.model.status import EVERY
from consent_ledger.model.taxonomy import Channel, LegalBasis, TemplateCategory
from consent_ledger.model.values import utc_text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from consent_ledger.ledger import ConsentLedger
    from consent_ledger.model.history import HistoryEntry, SubjectHistory
    from consent_ledger.model.notice import NoticeVersion
    from consent_ledger.model.taxonomy import Category
    from consent_ledger.model.values import NoticeRef

VERSION = "KI-CR-v1.1.0"
EXTENSION = "x-consent-ledger"
NOT_RECORDED = "not recorded"
RECEIPT_NAMESPACE = uuid.UUID("8a0b6f4e-3c1d-5e7f-9a2b-4c6d8e0f1a3b")
"""The UUIDv5 namespace of consent receipt ids (fixed: changing it changes every id)."""

GRANT_EVENTS = frozenset({"OptedIn", "CategoriesChanged"})
CONFIRMATION = "OptInConfirmed"

CONTACT = "2 - Contact"  # Kantara PII category: the ledger holds contact identifiers only
PURPOSE_CATEGORIES = {
    TemplateCategory.MARKETING: "6 - Marketing",
    TemplateCategory.UTILITY: "2 - Contracted Service",
    TemplateCategory.AUTHENTICATION: "1 - Core Function",
}
CONSENT_TYPES = {
    LegalBasis.CONSENT: "EXPLICIT",
    LegalBasis.EXPLICIT_CONSENT: "EXPLICIT",
    LegalBasis.PRIOR_EXPRESS_WRITTEN_CONSENT: "EXPLICIT",
    LegalBasis.PRIOR_EXPRESS_CONSENT: "EXPLICIT",
    LegalBasis.SOFT_OPT_IN: "IMPLICIT",
    # Not consent at all; Kantara's own example writes N/A for such a purpose.
    LegalBasis.CONTRACT: "N/A",
    LegalBasis.LEGITIMATE_INTEREST: "N/A",
}
CHANNEL_NAMES: dict[str, str] = {
    Channel.WHATSAPP: "WhatsApp",
    Channel.SMS: "SMS",
    Channel.RCS: "RCS",
    Channel.EMAIL: "E-mail",
}
CONTROLLER_NOT_RECORDED = (
    "piiControllers[0].contact",
    "piiControllers[0].address",
    "piiControllers[0].email",
    "piiControllers[0].phone",
)
THIRD_PARTY_NOT_RECORDED = "services[0].purposes[*].thirdPartyDisclosure"


def receipts(
    ledger: ConsentLedger, identifier: Identifier | str, *, business_id: str, reveal: bool = False
) -> list[dict[str, Any]]:
    """A consent receipt for each grant in a person's record with a business, oldest first.

    Args:
        ledger: The ledger to read.
        identifier: The person (a phone number, ``wa:``, ``bsuid:`` or ``email:``).
        business_id: The business the consent was given to.
        reveal: Put the person's identifier in ``piiPrincipalId`` (default: the subject id).

    Returns:
        JSON-ready dicts in the Kantara Consent Receipt v1.1 shape, plus ``x-consent-ledger``.

    Raises:
        SubjectNotFoundError: the person has no consent record with the business.
    """
    record = _Record.read(ledger, identifier, business_id=business_id, reveal=reveal)
    return [record.receipt(entry) for entry in record.history.entries if is_grant(entry)]


def receipt(
    ledger: ConsentLedger,
    identifier: Identifier | str,
    *,
    business_id: str,
    version: int,
    reveal: bool = False,
) -> dict[str, Any]:
    """The consent receipt of the grant at event ``version`` of a person's record.

    Args:
        ledger: The ledger to read.
        identifier: The person.
        business_id: The business the consent was given to.
        version: The event's version in the person's record (as ``history`` numbers it).
        reveal: Put the person's identifier in ``piiPrincipalId``.

    Returns:
        One receipt, as :func:`receipts` writes them.

    Raises:
        SubjectNotFoundError: the person has no consent record with the business.
        InvalidInputError: there is no such event, or it grants no consent.
    """
    record = _Record.read(ledger, identifier, business_id=business_id, reveal=reveal)
    return record.receipt(record.grant(version))


def is_grant(entry: HistoryEntry) -> bool:
    """Whether an event grants consent, and so has a receipt."""
    return entry.event_type in GRANT_EVENTS and bool(entry.granted) and entry.notice is not None


def receipt_id(ledger_id: str, subject_id: uuid.UUID, version: int) -> str:
    """The stable id of the receipt of one event: a UUIDv5 of where the event is."""
    return str(uuid.uuid5(RECEIPT_NAMESPACE, f"{ledger_id}/{subject_id}/{version}"))


def consent_timestamp(moment: datetime) -> int:
    """A time as Kantara writes it: whole seconds since 1970-01-01 UTC (rounded down)."""
    return math.floor(moment.timestamp())


@dataclass(frozen=True)
class _Record:
    """One person's history with what every receipt of it shares."""

    ledger_id: str
    history: SubjectHistory
    principal_id: str
    principal_kind: str
    notice: Callable[[NoticeRef], NoticeVersion]
    categories: dict[str, Category]  # the business's, its own included

    @classmethod
    def read(
        cls, ledger: ConsentLedger, identifier: Identifier | str, *, business_id: str, reveal: bool
    ) -> _Record:
        person = identifier if isinstance(identifier, Identifier) else Identifier.parse(identifier)
        history = ledger.get_history(person, business_id=business_id)
        revealed = None  # also when the person's data key is gone (erased)
        if reveal and history.identifier is not None and history.identifier_kind is not None:
            revealed = address(history.identifier_kind, history.identifier)  # as registered
        versions: dict[tuple[str, int], NoticeVersion] = {}

        def notice(ref: NoticeRef) -> NoticeVersion:
            key = (ref.notice_id, ref.version)
            if key not in versions:
                versions[key] = ledger.get_notice(business_id, ref.notice_id, ref.version)
            return versions[key]

        return cls(
            ledger_id=ledger.event_log.ledger_id,
            history=history,
            principal_id=revealed or str(history.subject_id),
            principal_kind="subject-id" if revealed is None else "identifier",
            notice=notice,
            categories={c.name: c for c in ledger.list_categories(business_id)},
        )

    def grant(self, version: int) -> HistoryEntry:
        """The grant at ``version``; an error that says what is there otherwise."""
        entries = self.history.entries
        if not 1 <= version <= len(entries):
            msg = (
                f"subject {self.history.subject_id} has no event #{version} "
                f"(its events are #1 to #{len(entries)})"
            )
            raise InvalidInputError(msg)
        entry = entries[version - 1]
        if is_grant(entry):
            return entry
        if entry.event_type == CONFIRMATION:
            opt_ins = ", ".join(f"#{e.version}" for e in confirmed_by(entry, entries))
            msg = (
                f"event #{version} is an {CONFIRMATION}: a confirmation is part of the receipt "
                f"of the opt-in it confirms ({opt_ins}); ask for that version"
            )
            raise InvalidInputError(msg)
        msg = (
            f"event #{version} ({entry.event_type}) grants no consent: receipts are issued for "
            "OptedIn events and for CategoriesChanged events that grant categories"
        )
        raise InvalidInputError(msg)

    def receipt(self, entry: HistoryEntry) -> dict[str, Any]:
        """The receipt of one grant."""
        assert entry.notice is not None  # noqa: S101 (is_grant checked it)
        ref = entry.notice
        notice = self.notice(ref)
        double = double_opt_in(entry, self.history.entries)
        kantara: dict[str, Any] = {
            "version": VERSION,
            "jurisdiction": entry.jurisdiction or NOT_RECORDED,
            "consentTimestamp": consent_timestamp(_occurred(entry)),
            "collectionMethod": collection_method(entry, double),
            "consentReceiptID": receipt_id(self.ledger_id, self.history.subject_id, entry.version),
        }
        language = iso_639_1(ref.language)
        if language is not None:
            kantara["language"] = language
        return kantara | {
            "piiPrincipalId": self.principal_id,
            "piiControllers": [controller(ref)],
            "policyUrl": notice.policy_url or NOT_RECORDED,
            "services": [service(entry, ref.business_name, self.categories)],
            "sensitive": False,
            "spiCat": [],
            EXTENSION: self.extension(entry, notice, double),
        }

    def extension(
        self, entry: HistoryEntry, notice: NoticeVersion, double: DoubleOptIn | None
    ) -> dict[str, Any]:
        """The ledger's references for the receipt of ``entry``: outside the Kantara fields."""
        return {
            "ledger_id": self.ledger_id,
            "business_id": self.history.business_id,
            "subject_id": str(self.history.subject_id),
            "pii_principal_id": self.principal_kind,
            "event_version": entry.version,
            "event_type": entry.event_type,
            "occurred_at": utc_text(_occurred(entry)),
            "recorded_at": utc_text(entry.recorded_at),
            "channel": entry.channel,
            "sender": entry.sender,
            "categories": list(entry.granted),
            "withdrawn": list(entry.withdrawn),
            "notice": f"{notice.notice_id}@{notice.version}",
            "notice_hash": notice.content_hash,
            "notice_language": notice.language,
            "legal_basis": entry.legal_basis,
            "jurisdiction": entry.jurisdiction,
            "expires_at": None if entry.expires_at is None else utc_text(entry.expires_at),
            "method": entry.method,
            "collection_point": entry.collection_point,
            "actor": entry.actor,
            "double_opt_in": None if double is None else double.to_json(),
            "not_recorded": not_recorded(entry, notice),
        }


def _occurred(entry: HistoryEntry) -> datetime:
    assert entry.occurred_at is not None  # noqa: S101 (only SubjectRegistered has none)
    return entry.occurred_at


# The Kantara fields.


def collection_method(entry: HistoryEntry, double: DoubleOptIn | None) -> str:
    """How consent was obtained: method, where, by whom, and a double opt-in's confirmation."""
    text = str(entry.method)
    if entry.collection_point:
        text += f" at {entry.collection_point}"
    if entry.actor and entry.actor != "subject":
        text += f" by {entry.actor}"
    if double is not None:
        text += f"; {double.summary()}"
    return text


def iso_639_1(tag: str) -> str | None:
    """The ISO 639-1 code Kantara asks for, from a BCP 47 tag; None if it has none."""
    primary = tag.split("-", 1)[0].lower()
    return primary if len(primary) == 2 else None  # noqa: PLR2004 (ISO 639-1 codes)


def controller(ref: NoticeRef) -> dict[str, Any]:
    """The business as PII controller, named as the notice named it."""
    return {
        "piiController": ref.business_name,
        "contact": NOT_RECORDED,
        "address": {},
        "email": NOT_RECORDED,
        "phone": NOT_RECORDED,
    }


def service(
    entry: HistoryEntry, business_name: str, categories: dict[str, Category]
) -> dict[str, Any]:
    """The messages consented to: one service per channel (and sender), one purpose per category.

    ``categories``: the business's, by name (the built-in ones and its own).
    """
    channel = str(entry.channel)
    name = f"{CHANNEL_NAMES.get(channel, channel)} messages from {business_name}"
    if entry.sender is not None:
        name += f" (sender {entry.sender})"
    return {"service": name, "purposes": [purpose(categories[c], entry) for c in entry.granted]}


def purpose(category: Category, entry: HistoryEntry) -> dict[str, Any]:
    """One category granted, as a Kantara purpose: its description, and its kind of message."""
    return {
        "purpose": f"{category.description} ({category.name})",
        "purposeCategory": [PURPOSE_CATEGORIES[category.template_category]],
        "consentType": CONSENT_TYPES[LegalBasis(entry.legal_basis or LegalBasis.CONSENT)],
        "piiCategory": [CONTACT],
        "termination": termination(entry.expires_at),
        "thirdPartyDisclosure": False,  # none recorded: listed in not_recorded
    }


def termination(expires_at: datetime | None) -> str:
    """When the grant ends: at the person's opt-out, or at its expiry if that comes first."""
    if expires_at is None:
        return "when the person opts out"
    return f"when the person opts out, or at {utc_text(expires_at)} (expiry), if that is earlier"


def not_recorded(entry: HistoryEntry, notice: NoticeVersion) -> list[str]:
    """The required Kantara fields the ledger has no data for, by path."""
    missing = ["jurisdiction"] if entry.jurisdiction is None else []
    missing += CONTROLLER_NOT_RECORDED
    if notice.policy_url is None:
        missing.append("policyUrl")
    missing.append(THIRD_PARTY_NOT_RECORDED)
    return missing


# Double opt-in.


@dataclass(frozen=True)
class DoubleOptIn:
    """What became of an opt-in that awaited confirmation: which event confirmed what."""

    confirmations: list[tuple[HistoryEntry, tuple[str, ...]]]
    unconfirmed: tuple[str, ...]

    def summary(self) -> str:
        """A phrase for ``collectionMethod``."""
        events = ", ".join(f"#{e.version}" for e, _ in self.confirmations)
        if not self.confirmations:
            return "double opt-in, not confirmed"
        if not self.unconfirmed:
            return f"double opt-in, confirmed (event {events})"
        return (
            f"double opt-in, partly confirmed (event {events}); "
            f"not confirmed: {', '.join(self.unconfirmed)}"
        )

    def to_json(self) -> dict[str, Any]:
        """The extension's ``double_opt_in`` object."""
        return {
            "confirmed": bool(self.confirmations) and not self.unconfirmed,
            "unconfirmed_categories": list(self.unconfirmed),
            "confirmations": [_confirmation_json(e, c) for e, c in self.confirmations],
        }


def _confirmation_json(entry: HistoryEntry, categories: tuple[str, ...]) -> dict[str, Any]:
    return {
        "event_version": entry.version,
        "event_type": entry.event_type,
        "occurred_at": utc_text(_occurred(entry)),
        "recorded_at": utc_text(entry.recorded_at),
        "categories": list(categories),
        "method": entry.method,
        "collection_point": entry.collection_point,
        "actor": entry.actor,
    }


def double_opt_in(entry: HistoryEntry, entries: Sequence[HistoryEntry]) -> DoubleOptIn | None:
    """Which confirmations confirmed an opt-in's categories; None if it needed none.

    Events apply in the order they occurred, as in the ledger's status: a category is
    confirmed by the first later event that touches it, if that event is a confirmation
    (a withdrawal or a new grant first leaves it unconfirmed for good).
    """
    if not entry.awaiting_confirmation:
        return None
    later = [e for e in _in_occurred_order(entries) if _after(e, entry)]
    by: dict[int, tuple[HistoryEntry, list[str]]] = {}
    unconfirmed = []
    for category in entry.granted:
        first = next((e for e in later if _reaches(e, entry, category)), None)
        if first is None or first.event_type != CONFIRMATION:
            unconfirmed.append(category)
        else:
            by.setdefault(first.version, (first, []))[1].append(category)
    confirmations = [(e, tuple(c)) for _, (e, c) in sorted(by.items())]
    return DoubleOptIn(confirmations, tuple(unconfirmed))


def confirmed_by(confirmation: HistoryEntry, entries: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """The opt-ins a confirmation confirmed (some of) the categories of."""
    found = []
    for entry in entries:
        double = double_opt_in(entry, entries)
        if double is not None and any(e is confirmation for e, _ in double.confirmations):
            found.append(entry)
    return found


def _in_occurred_order(entries: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    timed = [e for e in entries if e.occurred_at is not None]
    return sorted(timed, key=lambda e: (e.occurred_at, e.version))


def _after(entry: HistoryEntry, grant: HistoryEntry) -> bool:
    return (_occurred(entry), entry.version) > (_occurred(grant), grant.version)


def _reaches(entry: HistoryEntry, grant: HistoryEntry, category: str) -> bool:
    """Whether ``entry`` changes the consent ``grant`` gave for ``category``.

    The same scope rule as the ledger's status: an event for every channel, category or
    sender reaches each one; a confirmation reaches what it names.
    """
    if entry.platform_marketing is not None:
        return False
    touched = (*entry.granted, *entry.withdrawn, *entry.confirmed)
    return (
        entry.channel in {EVERY, grant.channel}
        and (category in touched or EVERY in touched)
        and (entry.sender is None or entry.sender == grant.sender)
    )
