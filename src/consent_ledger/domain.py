"""The write model: businesses, their opt-in notices, and each person's consent record.

Every change is an immutable, past-tense event; aggregates are rebuilt by replaying them.
Events are frozen pydantic models with pinned topics and a schema version, so stored events
keep their meaning when code moves, and a change of shape is an upcaster, not an edit.

Personal data never appears here in clear: the application seals it (see ``keys.py``) and
the events carry the :class:`Sealed` ciphertext. The rules:

* an opt-in must name a published notice of the same business, for the same channel,
  whose categories cover the ones granted;
* an opt-out is never refused, whatever was granted before (including nothing);
* categories are granted and withdrawn independently.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate
from pydantic import AwareDatetime, Field

from .exceptions import ConsentRuleError, NoticeNotFoundError, NoticeRuleError
from .identifiers import IdentifierKind  # noqa: TC001 (pydantic reads it at runtime)
from .status import (
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
from .taxonomy import Channel, LegalBasis, TemplateCategory
from .values import Categories, Immutable, Language, NoticeRef, Provenance, Sealed, Slug

if TYPE_CHECKING:
    from collections.abc import Iterator

INBOUND_SIGNALS = frozenset({"message", "help", "possible-opt-out", "opt-in-keyword"})
"""The signals that are messages from the person (which open a service window)."""
SERVICE_WINDOW = timedelta(hours=24)
"""How long a message from the person lets the business answer without an opt-in."""

# Deterministic ids for businesses and notices (not personal data); subjects get UUIDv7.
_NAMESPACE = uuid.UUID("5f0d7e55-2d4b-4f4e-9b7c-1e0c0a5e1d90")
MAX_NOTICE_CHARS = 100_000


# Events and aggregates.


class DomainEvent(Immutable):
    """Base of every stored event: who it belongs to, its position, when it was recorded.

    ``timestamp`` is when the ledger recorded the event; events about consent also say
    when the decision occurred (``provenance.occurred_at``), which may be earlier.
    """

    class_version: ClassVar[int] = 1

    originator_id: uuid.UUID
    originator_version: int
    timestamp: AwareDatetime


class Aggregate(BaseAggregate[uuid.UUID]):
    """Base of the ledger's aggregates."""

    class Event(DomainEvent, CanMutateAggregate[uuid.UUID]):
        """Base of the events of an aggregate."""

    class Created(Event, CanInitAggregate[uuid.UUID]):
        """Base of the first event of an aggregate."""

        originator_topic: str


class Business(Aggregate):
    """A business that sends messages and publishes opt-in notices."""

    TOPIC = "consent-ledger:Business"

    class Event(Aggregate.Event):
        """Base of Business events."""

        TOPIC: ClassVar[str] = "consent-ledger:Business.Event"

    class Registered(Aggregate.Created):
        """A business was registered under an id, with the name people know it by."""

        TOPIC: ClassVar[str] = "consent-ledger:Business.Registered"
        business_id: Slug
        display_name: str = Field(min_length=1, max_length=200)

    class NoticeAdded(Event):
        """The business published the first version of a new notice."""

        TOPIC: ClassVar[str] = "consent-ledger:Business.NoticeAdded"
        notice_id: str

        def apply(self, aggregate: Business) -> None:
            """Remember the notice."""
            aggregate.notice_ids.append(self.notice_id)

    def __init__(self, business_id: str, display_name: str) -> None:
        """Initial state, from the Registered event."""
        self.business_id = business_id
        self.display_name = display_name
        self.notice_ids: list[str] = []

    @staticmethod
    def create_id(business_id: str) -> uuid.UUID:
        """The aggregate id of a business: derived from its (public) business id."""
        return uuid.uuid5(_NAMESPACE, f"business/{business_id}")

    @classmethod
    def register(cls, business_id: str, display_name: str) -> Business:
        """Register a business."""
        return cls._create(
            cls.Registered,
            id=cls.create_id(business_id),
            business_id=business_id,
            display_name=display_name.strip(),
        )

    def add_notice(self, notice_id: str) -> None:
        """Record that the business published a new notice."""
        self.trigger_event(self.NoticeAdded, notice_id=notice_id)


class NoticeVersion(Immutable):
    """One published version of an opt-in notice, as people saw it."""

    business_id: str
    notice_id: str
    version: int
    business_name: str
    language: str
    channel: Channel
    categories: tuple[str, ...]
    text: str
    content_hash: str
    policy_url: str | None
    published_at: datetime

    @property
    def ref(self) -> NoticeRef:
        """The reference an opt-in stores to this version."""
        return NoticeRef(
            notice_id=self.notice_id,
            version=self.version,
            content_hash=self.content_hash,
            business_name=self.business_name,
            language=self.language,
        )

    def check_covers(self, business_id: str, channel: Channel, categories: tuple[str, ...]) -> None:
        """Raise unless this notice may back a grant of ``categories`` on ``channel``.

        Raises:
            NoticeRuleError: the notice is another business's, for another channel, or
                does not name every category granted.
        """
        if business_id != self.business_id:
            msg = (
                f"notice {self.notice_id}@{self.version} belongs to business "
                f"{self.business_id!r}, not {business_id!r}: an opt-in must name a notice "
                "of the business that will send the messages"
            )
            raise NoticeRuleError(msg)
        if channel != self.channel:
            msg = (
                f"notice {self.notice_id}@{self.version} is for channel {self.channel}, "
                f"not {channel}: consent on one channel does not cover another"
            )
            raise NoticeRuleError(msg)
        uncovered = [c for c in categories if c not in self.categories]
        if uncovered:
            msg = (
                f"notice {self.notice_id}@{self.version} does not cover "
                f"{', '.join(uncovered)} (it covers {', '.join(self.categories)}): "
                "people can only agree to categories the notice told them about"
            )
            raise NoticeRuleError(msg)


def content_hash(text: str) -> str:
    """The hash that identifies a notice's exact wording."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class Notice(Aggregate):
    """A business's opt-in wording, in numbered versions that are never edited."""

    TOPIC = "consent-ledger:Notice"

    class Event(Aggregate.Event):
        """Base of Notice events."""

        TOPIC: ClassVar[str] = "consent-ledger:Notice.Event"

    class Registered(Aggregate.Created):
        """A notice id was taken by a business."""

        TOPIC: ClassVar[str] = "consent-ledger:Notice.Registered"
        business_id: str
        notice_id: Slug

    class VersionPublished(Event):
        """A version of the notice was published: the wording people will be shown."""

        TOPIC: ClassVar[str] = "consent-ledger:Notice.VersionPublished"
        version: int
        business_name: str
        language: Language
        channel: Channel
        categories: Categories = Field(min_length=1)
        text: str = Field(min_length=1, max_length=MAX_NOTICE_CHARS)
        content_hash: str
        policy_url: str | None = None

        def apply(self, aggregate: Notice) -> None:
            """Add the version."""
            aggregate.versions.append(
                NoticeVersion(
                    business_id=aggregate.business_id,
                    notice_id=aggregate.notice_id,
                    published_at=self.timestamp,
                    **self.model_dump(include=_VERSION_FIELDS),
                )
            )

    def __init__(self, business_id: str, notice_id: str) -> None:
        """Initial state, from the Registered event."""
        self.business_id = business_id
        self.notice_id = notice_id
        self.versions: list[NoticeVersion] = []

    @staticmethod
    def create_id(business_id: str, notice_id: str) -> uuid.UUID:
        """The aggregate id of a notice: derived from its business and notice ids."""
        return uuid.uuid5(_NAMESPACE, f"notice/{business_id}/{notice_id}")

    @classmethod
    def register(cls, business_id: str, notice_id: str) -> Notice:
        """Take a notice id for a business."""
        return cls._create(
            cls.Registered,
            id=cls.create_id(business_id, notice_id),
            business_id=business_id,
            notice_id=notice_id,
        )

    def publish(  # noqa: PLR0913 (a notice has this many facts)
        self,
        business: Business,
        *,
        language: str,
        channel: Channel,
        categories: tuple[str, ...],
        text: str,
        policy_url: str | None = None,
    ) -> NoticeVersion:
        """Publish the next version of the notice.

        Raises:
            NoticeRuleError: the text does not name the business (WhatsApp's opt-in rule).
        """
        if business.display_name.casefold() not in text.casefold():
            msg = (
                f"the notice text does not name the business: it must say {business.display_name!r}"
                " so people know who will message them"
            )
            raise NoticeRuleError(msg)
        self.trigger_event(
            self.VersionPublished,
            version=len(self.versions) + 1,
            business_name=business.display_name,
            language=language,
            channel=channel,
            categories=categories,
            text=text,
            content_hash=content_hash(text),
            policy_url=policy_url,
        )
        return self.versions[-1]

    def get_version(self, version: int | None = None) -> NoticeVersion:
        """A published version, or the latest one when ``version`` is None.

        Raises:
            NoticeNotFoundError: no such version has been published.
        """
        if version is None and self.versions:
            return self.versions[-1]
        if version is not None and 1 <= version <= len(self.versions):
            return self.versions[version - 1]
        published = len(self.versions)
        msg = f"notice {self.notice_id!r} has no version {version} (versions 1 to {published})"
        raise NoticeNotFoundError(msg)


_VERSION_FIELDS = {
    "version",
    "business_name",
    "language",
    "channel",
    "categories",
    "text",
    "content_hash",
    "policy_url",
}


class Template(Aggregate):
    """A business's message template (a name in a language) and the category it is in.

    WhatsApp decides a template's category, and may change it (a utility template filed
    again as marketing): a send is judged by the category in force when it is sent.
    """

    TOPIC = "consent-ledger:Template"

    class Event(Aggregate.Event):
        """Base of Template events."""

        TOPIC: ClassVar[str] = "consent-ledger:Template.Event"

    class Registered(Aggregate.Created):
        """The ledger started keeping a template's category."""

        TOPIC: ClassVar[str] = "consent-ledger:Template.Registered"
        business_id: Slug
        name: str = Field(min_length=1, max_length=512)
        language: str = Field(min_length=1, max_length=20)

    class CategoryChanged(Event):
        """The template is in ``category`` from ``effective_at`` on."""

        TOPIC: ClassVar[str] = "consent-ledger:Template.CategoryChanged"
        category: TemplateCategory
        previous: TemplateCategory | None = None
        effective_at: AwareDatetime
        source: str = Field(description="operator, or whatsapp (a template_category_update)")
        platform_template_id: str | None = None

        def apply(self, aggregate: Template) -> None:
            """Keep the change."""
            aggregate.changes.append(self)

    class CategoryChangeAnnounced(Event):
        """WhatsApp announced a change of category (not in force until it is done)."""

        TOPIC: ClassVar[str] = "consent-ledger:Template.CategoryChangeAnnounced"
        category: TemplateCategory
        previous: TemplateCategory | None = None
        effective_at: AwareDatetime | None = None
        platform_template_id: str | None = None

    def __init__(self, business_id: str, name: str, language: str) -> None:
        """Initial state, from the Registered event."""
        self.business_id = business_id
        self.name = name
        self.language = language
        self.changes: list[Template.CategoryChanged] = []

    @staticmethod
    def create_id(business_id: str, name: str, language: str) -> uuid.UUID:
        """The aggregate id of a template: derived from its business, name and language."""
        return uuid.uuid5(_NAMESPACE, f"template/{business_id}/{name}/{language}")

    @classmethod
    def register(cls, business_id: str, name: str, language: str) -> Template:
        """Start keeping a template's category."""
        return cls._create(
            cls.Registered,
            id=cls.create_id(business_id, name, language),
            business_id=business_id,
            name=name,
            language=language,
        )

    def change_category(
        self,
        category: TemplateCategory,
        *,
        effective_at: datetime,
        source: str,
        previous: TemplateCategory | None = None,
        platform_template_id: str | None = None,
    ) -> None:
        """Record the template's category from ``effective_at`` on."""
        self.trigger_event(
            self.CategoryChanged,
            category=category,
            previous=previous,
            effective_at=effective_at,
            source=source,
            platform_template_id=platform_template_id,
        )

    def announce_category(
        self,
        category: TemplateCategory,
        *,
        previous: TemplateCategory | None,
        effective_at: datetime | None,
        platform_template_id: str | None = None,
    ) -> None:
        """Record a change of category WhatsApp announced."""
        self.trigger_event(
            self.CategoryChangeAnnounced,
            category=category,
            previous=previous,
            effective_at=effective_at,
            platform_template_id=platform_template_id,
        )

    def category_at(self, at: datetime) -> TemplateCategory | None:
        """The category in force at ``at`` (the latest change effective by then), if any."""
        effective = [c for c in self.changes if c.effective_at <= at]
        if not effective:
            return None
        return max(enumerate(effective), key=lambda ic: (ic[1].effective_at, ic[0]))[1].category


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
                    f"{at.astimezone(UTC).isoformat()}: confirm what an opt-in asked to confirm"
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
            f"the grant would expire ({expires_at.astimezone(UTC).isoformat()}) "
            f"no later than it was given ({occurred_at.astimezone(UTC).isoformat()})"
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
