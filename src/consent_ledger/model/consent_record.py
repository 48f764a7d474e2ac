"""Each person's consent record towards one business.

Personal data never appears here in clear: the application seals it (see
:mod:`consent_ledger.privacy.keys`) and the events carry the :class:`Sealed` ciphertext. The rules:

* an opt-in must name a published notice of the same business, for the same channel,
  whose categories cover the ones granted;
* an opt-out is never refused, whatever was granted before (including nothing);
* categories are granted and withdrawn independently.

The record and its events stay in one module, over 500 lines: each event applies itself to
the record, and each command checks the record's state before it triggers one, so a rule
and the state it guards are read together. What a send carries lives in
:mod:`consent_ledger.model.sends`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from pydantic import AwareDatetime, Field

from consent_ledger.exceptions import ConsentRuleError, NoticeRuleError
from consent_ledger.model.identifiers import IdentifierKind  # noqa: TC001 (pydantic reads it at runtime)
from consent_ledger.model.sends import SendFacts, SentMessage
from consent_ledger.model.status import (
    END_OF_TIME,
    ConsentState,
    Effect,
    EffectKind,
    PlatformState,
    State,
    evaluate,
    fold,
    platform_states,
    visible,
)
from consent_ledger.model.taxonomy import Channel, LegalBasis, TemplateCategory
from consent_ledger.model.values import (
    Categories,
    NoticeRef,
    Provenance,
    Sealed,
    utc_seconds,
)

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterator

from consent_ledger.model.aggregate import Aggregate

if TYPE_CHECKING:
    from consent_ledger.model.notice import NoticeVersion


INBOUND_SIGNALS = frozenset({"message", "help", "possible-opt-out", "opt-in-keyword"})
"""The signals that are messages from the person (which open a service window)."""
SERVICE_WINDOW = timedelta(hours=24)
"""How long a message from the person lets the business answer without an opt-in."""


class ConsentRecord(Aggregate):
    """One person's consent towards one business: every grant, withdrawal and change.

    The record's id is a time-ordered UUID (UUIDv7) that says nothing about the person;
    the identifier they were first known by is sealed in :class:`SubjectRegistered`.
    """

    TOPIC = "consent-ledger:ConsentRecord"

    class Event(Aggregate.Event):
        """Base of ConsentRecord events."""

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.Event"

    class SubjectRegistered(Aggregate.Created):
        """The ledger started a consent record for a person, known by a sealed identifier."""

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.SubjectRegistered"
        business_id: str
        identifier_kind: IdentifierKind
        identifier: Sealed

    class Change(Event):
        """Base of the events that change consent."""

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.Change"
        provenance: Provenance
        evidence: Sealed | None = None

        def apply(self, aggregate: ConsentRecord) -> None:
            """Add the change to the record."""
            aggregate.changes.append(self)

        def effects(self) -> Iterator[Effect]:
            """What the change does to consent."""
            raise NotImplementedError

        def _effect(  # noqa: PLR0913 (an effect has this many facts)
            self,
            kind: EffectKind,
            channel: Channel | None,
            categories: tuple[str, ...] | None,
            sender: str | None,
            *,
            expires_at: datetime | None = None,
            notice: NoticeRef | None = None,
        ) -> Effect:
            return Effect(
                kind=kind,
                channel=channel,
                categories=categories,
                sender=sender,
                occurred_at=self.provenance.occurred_at,
                recorded_at=self.timestamp,
                version=self.originator_version,
                event_type=type(self).__name__,
                expires_at=expires_at,
                notice=notice,
            )

    class OptedIn(Change):
        """The person agreed to receive messages of some categories on a channel."""

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.OptedIn"
        channel: Channel
        categories: Categories = Field(min_length=1)
        sender: str | None = None
        notice: NoticeRef
        expires_at: AwareDatetime | None = None
        awaiting_confirmation: bool = False
        legal_basis: LegalBasis = LegalBasis.CONSENT
        jurisdiction: str | None = None

        def effects(self) -> Iterator[Effect]:
            """A grant, pending if it awaits confirmation."""
            kind = EffectKind.GRANT_PENDING if self.awaiting_confirmation else EffectKind.GRANT
            yield self._effect(
                kind,
                self.channel,
                self.categories,
                self.sender,
                expires_at=self.expires_at,
                notice=self.notice,
            )

    class OptInConfirmed(Change):
        """The person confirmed an opt-in that awaited confirmation (double opt-in)."""

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.OptInConfirmed"
        channel: Channel
        categories: Categories = Field(min_length=1)
        sender: str | None = None

        def effects(self) -> Iterator[Effect]:
            """A confirmation of the pending grants it names."""
            yield self._effect(EffectKind.CONFIRM, self.channel, self.categories, self.sender)

    class OptedOut(Change):
        """The person withdrew consent: for some categories or all, on a channel or all."""

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.OptedOut"
        channel: Channel | None
        categories: Categories | None
        sender: str | None = None
        reason: Sealed | None = None  # the person's words may say who they are: sealed

        def effects(self) -> Iterator[Effect]:
            """A withdrawal over its scope (None: every channel or every category)."""
            yield self._effect(EffectKind.WITHDRAW, self.channel, self.categories, self.sender)

    class CategoriesChanged(Change):
        """The person granted some categories and withdrew others, in one decision."""

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.CategoriesChanged"
        channel: Channel
        granted: Categories
        withdrawn: Categories
        sender: str | None = None
        notice: NoticeRef | None
        expires_at: AwareDatetime | None = None
        legal_basis: LegalBasis = LegalBasis.CONSENT
        jurisdiction: str | None = None

        def effects(self) -> Iterator[Effect]:
            """A grant of the granted categories and a withdrawal of the others."""
            if self.granted:
                yield self._effect(
                    EffectKind.GRANT,
                    self.channel,
                    self.granted,
                    self.sender,
                    expires_at=self.expires_at,
                    notice=self.notice,
                )
            if self.withdrawn:
                yield self._effect(EffectKind.WITHDRAW, self.channel, self.withdrawn, self.sender)

    class PlatformMarketingStopped(Change):
        """The person stopped marketing messages from a sender on WhatsApp itself.

        Only the person can do this (WhatsApp's "Stop promotions"); it bars MARKETING
        templates from that business number whatever consent the ledger holds.
        """

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.PlatformMarketingStopped"
        sender: str | None = None

        def effects(self) -> Iterator[Effect]:
            """A marketing stop for the sender (None: every sender)."""
            yield self._effect(EffectKind.MARKETING_STOP, Channel.WHATSAPP, None, self.sender)

    class PlatformMarketingResumed(Change):
        """The person resumed marketing messages from a sender on WhatsApp."""

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.PlatformMarketingResumed"
        sender: str | None = None

        def effects(self) -> Iterator[Effect]:
            """A marketing resume for the sender (None: every sender)."""
            yield self._effect(EffectKind.MARKETING_RESUME, Channel.WHATSAPP, None, self.sender)

    class SignalReceived(Change):
        """A platform reported something about the person that changes no consent.

        A HELP reply, an opt-out word inside a longer message (for review), a delivery
        error (131049, 131047, 131026: an inferred block at most): evidence, not consent.
        """

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.SignalReceived"
        signal: str
        detail: str
        code: int | None = None
        sender: str | None = None

        def effects(self) -> Iterator[Effect]:
            """None: a signal is evidence, not a decision."""
            yield from ()

    class IdentifierLinked(Change):
        """Another identifier the person is known by (a wa_id, a business-scoped user id).

        It changes no consent; from now on the person is found under it too.
        """

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.IdentifierLinked"
        identifier_kind: IdentifierKind
        identifier: Sealed

        def effects(self) -> Iterator[Effect]:
            """None: who a person is known as is not what they agreed to."""
            yield from ()

    class MessageSent(Change):
        """A message went to the person, with the decision it rested on when recorded.

        It changes no consent: it is the evidence of one use of it, and what frequency
        limits count. The message id is kept only as a keyed hash (``message``), the
        content not at all; ``provenance.occurred_at`` is when it was sent.
        """

        TOPIC: ClassVar[str] = "consent-ledger:ConsentRecord.MessageSent"
        message: str = Field(description="keyed hash (hex) of the message id")
        channel: Channel
        category: str
        sender: str | None = None
        template_name: str | None = None
        template_language: str | None = None
        template_category: TemplateCategory
        policy: str
        allowed: bool
        reason: str
        rests_on: int | None = Field(
            default=None, description="the version of the event the decision rested on"
        )

        def effects(self) -> Iterator[Effect]:
            """None: a send uses consent, it does not change it."""
            yield from ()

    def __init__(self, business_id: str, identifier_kind: IdentifierKind) -> None:
        """Initial state, from the SubjectRegistered event."""
        self.business_id = business_id
        self.identifier_kind = identifier_kind
        self.changes: list[ConsentRecord.Change] = []

    @classmethod
    def register(
        cls,
        subject_id: uuid.UUID,
        business_id: str,
        identifier_kind: IdentifierKind,
        identifier: Sealed,
    ) -> ConsentRecord:
        """Start the consent record of a person the business has not seen before."""
        return cls._create(
            cls.SubjectRegistered,
            id=subject_id,
            business_id=business_id,
            identifier_kind=identifier_kind,
            identifier=identifier,
        )

    def opt_in(  # noqa: PLR0913 (an opt-in carries this many facts)
        self,
        notice: NoticeVersion,
        *,
        channel: Channel,
        categories: tuple[str, ...],
        sender: str | None,
        provenance: Provenance,
        expires_at: datetime | None = None,
        awaiting_confirmation: bool = False,
        legal_basis: LegalBasis = LegalBasis.CONSENT,
        jurisdiction: str | None = None,
        evidence: Sealed | None = None,
    ) -> None:
        """Record a grant of ``categories`` on ``channel``, backed by ``notice``.

        Raises:
            NoticeRuleError: the notice does not cover the grant.
            ConsentRuleError: the grant would expire before it was given.
        """
        notice.check_covers(self.business_id, channel, categories)
        check_expiry(provenance.occurred_at, expires_at)
        self.trigger_event(
            self.OptedIn,
            channel=channel,
            categories=categories,
            sender=sender,
            notice=notice.ref,
            provenance=provenance,
            expires_at=expires_at,
            awaiting_confirmation=awaiting_confirmation,
            legal_basis=legal_basis,
            jurisdiction=jurisdiction,
            evidence=evidence,
        )

    def confirm_opt_in(
        self,
        *,
        channel: Channel,
        categories: tuple[str, ...],
        sender: str | None,
        provenance: Provenance,
        evidence: Sealed | None = None,
    ) -> None:
        """Record the confirmation of an opt-in that awaited it.

        Raises:
            ConsentRuleError: no opt-in for one of these categories awaited confirmation
                when the confirmation occurred.
        """
        at = provenance.occurred_at
        effects = visible(self.effects(), at=at, known_at=END_OF_TIME)
        for category in categories:
            state = evaluate(effects, channel, category, sender, at)
            if state is None or state.state is not State.PENDING:
                msg = (
                    f"no opt-in for {category} on {channel} awaited confirmation at "
                    f"{utc_seconds(at)}: confirm what an opt-in asked to confirm"
                )
                raise ConsentRuleError(msg)
        self.trigger_event(
            self.OptInConfirmed,
            channel=channel,
            categories=categories,
            sender=sender,
            provenance=provenance,
            evidence=evidence,
        )

    def opt_out(  # noqa: PLR0913 (an opt-out carries this many facts)
        self,
        *,
        channel: Channel | None,
        categories: tuple[str, ...] | None,
        sender: str | None,
        provenance: Provenance,
        reason: Sealed | None = None,
        evidence: Sealed | None = None,
    ) -> None:
        """Record a withdrawal. Never refused, whatever was granted before.

        ``channel=None`` withdraws on every channel, ``categories=None`` every category.
        """
        self.trigger_event(
            self.OptedOut,
            channel=channel,
            categories=categories,
            sender=sender,
            provenance=provenance,
            reason=reason,
            evidence=evidence,
        )

    def change_categories(  # noqa: PLR0913 (a change carries this many facts)
        self,
        notice: NoticeVersion | None,
        *,
        channel: Channel,
        granted: tuple[str, ...],
        withdrawn: tuple[str, ...],
        sender: str | None,
        provenance: Provenance,
        expires_at: datetime | None = None,
        legal_basis: LegalBasis = LegalBasis.CONSENT,
        jurisdiction: str | None = None,
        evidence: Sealed | None = None,
    ) -> None:
        """Grant some categories and withdraw others in one event.

        Raises:
            ConsentRuleError: nothing changes, or a category is both granted and withdrawn.
            NoticeRuleError: categories are granted without a notice that covers them.
        """
        check_change(granted, withdrawn)
        if granted:
            if notice is None:
                msg = "granting categories needs the notice the person agreed to"
                raise NoticeRuleError(msg)
            notice.check_covers(self.business_id, channel, granted)
            check_expiry(provenance.occurred_at, expires_at)
        self.trigger_event(
            self.CategoriesChanged,
            channel=channel,
            granted=granted,
            withdrawn=withdrawn,
            sender=sender,
            notice=notice.ref if notice and granted else None,
            provenance=provenance,
            expires_at=expires_at,
            legal_basis=legal_basis,
            jurisdiction=jurisdiction,
            evidence=evidence,
        )

    def record_platform_preference(
        self,
        *,
        stopped: bool,
        sender: str | None,
        provenance: Provenance,
        evidence: Sealed | None = None,
    ) -> None:
        """Record that the person stopped (or resumed) marketing from a sender on WhatsApp.

        Never refused: like an opt-out, a stop is honoured whatever came before.
        """
        event = self.PlatformMarketingStopped if stopped else self.PlatformMarketingResumed
        self.trigger_event(event, sender=sender, provenance=provenance, evidence=evidence)

    def receive_signal(  # noqa: PLR0913 (a signal has this many facts)
        self,
        signal: str,
        *,
        detail: str,
        code: int | None,
        sender: str | None,
        provenance: Provenance,
        evidence: Sealed | None = None,
    ) -> None:
        """Record a platform's report about the person (no consent changes)."""
        self.trigger_event(
            self.SignalReceived,
            signal=signal,
            detail=detail,
            code=code,
            sender=sender,
            provenance=provenance,
            evidence=evidence,
        )

    def last_inbound(
        self, sender: str | None, at: datetime, known_at: datetime = END_OF_TIME
    ) -> datetime | None:
        """When the person last wrote to ``sender`` (None: any number) by ``at``, if ever.

        Their messages are the signals that came from them (a message, HELP, a keyword
        with nothing to act on, ...), as the ledger knew them at ``known_at``.
        """
        times = [
            change.provenance.occurred_at
            for change in self.changes
            if isinstance(change, ConsentRecord.SignalReceived)
            and change.signal in INBOUND_SIGNALS
            and (sender is None or change.sender == sender)
            and change.provenance.occurred_at <= at
            and change.timestamp <= known_at
        ]
        return max(times, default=None)

    def link_identifier(
        self,
        kind: IdentifierKind,
        identifier: Sealed,
        *,
        provenance: Provenance,
        evidence: Sealed | None = None,
    ) -> None:
        """Record that the person is also known by ``identifier`` (sealed)."""
        self.trigger_event(
            self.IdentifierLinked,
            identifier_kind=kind,
            identifier=identifier,
            provenance=provenance,
            evidence=evidence,
        )

    def record_send(self, send: SendFacts, *, provenance: Provenance) -> None:
        """Record that a message went to the person, and the decision it rested on."""
        self.trigger_event(self.MessageSent, **send.fields(), provenance=provenance)

    def sends(self, at: datetime, known_at: datetime = END_OF_TIME) -> list[SentMessage]:
        """The messages sent to the person by ``at``, as the ledger knew them at ``known_at``."""
        return [
            SentMessage(
                sent_at=change.provenance.occurred_at,
                category=change.category,
                template_category=change.template_category,
                sender=change.sender,
                channel=change.channel,
            )
            for change in self.changes
            if isinstance(change, ConsentRecord.MessageSent)
            and change.provenance.occurred_at <= at
            and change.timestamp <= known_at
        ]

    def effects(self) -> Iterator[Effect]:
        """The effects of every change, in the order recorded."""
        for change in self.changes:
            yield from change.effects()

    def status(self, at: datetime, known_at: datetime) -> list[ConsentState]:
        """Consent per channel, category and sender at ``at``, as known at ``known_at``."""
        return fold(self.effects(), at, known_at)

    def platform(self, at: datetime, known_at: datetime) -> list[PlatformState]:
        """Marketing stops and resumes per sender at ``at``, as known at ``known_at``."""
        return platform_states(visible(self.effects(), at, known_at))


def check_expiry(occurred_at: datetime, expires_at: datetime | None) -> None:
    """Raise if a grant would expire no later than it was given.

    Raises:
        ConsentRuleError: ``expires_at`` is not after ``occurred_at``.
    """
    if expires_at is not None and expires_at <= occurred_at:
        msg = (
            f"the grant would expire ({utc_seconds(expires_at)}) "
            f"no later than it was given ({utc_seconds(occurred_at)})"
        )
        raise ConsentRuleError(msg)


def check_change(granted: tuple[str, ...], withdrawn: tuple[str, ...]) -> None:
    """Raise unless a category change grants or withdraws something, never both at once.

    Raises:
        ConsentRuleError: nothing changes, or a category is in both lists.
    """
    if not granted and not withdrawn:
        msg = "a change must grant or withdraw at least one category"
        raise ConsentRuleError(msg)
    both = sorted(set(granted) & set(withdrawn))
    if both:
        msg = f"{', '.join(both)} cannot be granted and withdrawn in the same change"
        raise ConsentRuleError(msg)
