"""Send-time decisions: may this message go to this person, and who may a campaign reach.

The rules are in :mod:`consent_ledger.sending.eligibility`; this service finds what they
are applied to. A check reads current consent from a status view when it is given one
(one read finds the person, their consent and their stops), and otherwise folds the
person's record, which is exact at any moment (``at``, ``known_at``). An audience judges
a view's candidates a page at a time and opens their identifiers for the send.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Protocol, TypedDict, TypeVar

from consent_ledger.exceptions import ConsentRuleError, InvalidInputError
from consent_ledger.model.identifiers import as_identifier
from consent_ledger.model.plain import utc_text
from consent_ledger.model.status import END_OF_TIME, base_state, platform_states, visible
from consent_ledger.model.taxonomy import CATEGORIES, Channel
from consent_ledger.sending.eligibility import (
    CandidatePage,
    ConsentSource,
    Reason,
    RecipientPage,
    check_request,
    decide,
    erased,
    get_policy,
    limited,
    stopping,
    template_denial,
)
from consent_ledger.storage.view_database import PAGE_ROWS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from uuid import UUID

    from consent_ledger.application.books import Books
    from consent_ledger.application.catalogue import Catalogue
    from consent_ledger.model.consent_record import ConsentRecord
    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.sends import SentMessage
    from consent_ledger.model.status import ConsentState, PlatformState
    from consent_ledger.model.taxonomy import Category, TemplateCategory
    from consent_ledger.sending.eligibility import (
        Candidate,
        CheckRequest,
        Decision,
        Recipient,
    )
    from consent_ledger.sending.policy import Policy

T = TypeVar("T")


class SendOptions(TypedDict, total=False):
    """What a send may say beyond its business and category (see :meth:`SendingDecisions.check`)."""

    channel: Channel | str
    sender: str | None
    template_category: TemplateCategory | str | None
    policy: str | None


class CheckOptions(SendOptions, total=False):
    """What a check may say beyond a send's options (see :meth:`SendingDecisions.check`)."""

    at: datetime | None
    known_at: datetime | None
    in_service_window: bool | None
    source: ConsentView | None
    template: tuple[str, str] | None


class ConsentView(ConsentSource, Protocol):
    """A consent source that also finds people: what a check needs of a status view.

    :class:`consent_ledger.projections.ConsentStatusView` is one; a service may pass its
    own.
    """

    def consent_by_lookup(
        self, lookup: bytes, channel: str, category: str, sender: str | None
    ) -> tuple[
        UUID | None, ConsentState | None, list[PlatformState], Callable[[], list[SentMessage]]
    ]:
        """Who ``lookup`` finds, their base state for the key, their stops, their sends.

        The sends (the last 31 days of them) are decoded only when called for. Returns
        (None, None, [], ...) when the view knows nobody under ``lookup``.
        """

    def sends(self, subject_id: UUID) -> list[SentMessage]:
        """The person's recent sends (the last 31 days of them), oldest first."""


class SendingDecisions:
    """Decides sends: one check at a time, or a campaign's audience."""

    def __init__(self, books: Books, catalogue: Callable[[], Catalogue]) -> None:
        """Read ``books``; find templates' categories in the catalogue ``catalogue()`` gives."""
        self._books = books
        self._catalogue = catalogue
        self._defined: dict[tuple[str, str], Category] = {}  # businesses' own, as looked up

    def check(  # noqa: PLR0913 (a send has this many facts)
        self,
        identifier: Identifier | str,
        *,
        business_id: str,
        category: str,
        channel: Channel | str = Channel.WHATSAPP,
        sender: str | None = None,
        template_category: TemplateCategory | str | None = None,
        policy: str | None = None,
        at: datetime | None = None,
        known_at: datetime | None = None,
        in_service_window: bool | None = None,
        source: ConsentView | None = None,
        template: tuple[str, str] | None = None,
    ) -> Decision:
        """May a message of ``category`` be sent to this person now (or at ``at``)?

        ``in_service_window``: whether a customer service window is open; by default the
        ledger works it out from the person's record (a message from them to ``sender``,
        or to any of the business's numbers when ``sender`` is None, in the 24 hours
        before the send), and only when it could change the answer.
        ``template``: the (name, language) of the template to send; its category in force
        at the send (see :meth:`Catalogue.set_template_category`) is the template category.
        ``template_category`` defaults to the category's own (offers: MARKETING); ``policy``
        to the channel's default preset (whatsapp-2025 for WhatsApp, consent-only else).
        ``source`` is where current consent is read, typically a status view that is kept
        caught up; without it, or with ``at`` or ``known_at``, the person's record is
        folded on the spot, which is exact at any moment.

        Raises:
            UnknownCategoryError: the category is none of the business's.
            UnknownPolicyError: no policy preset has that name.
            InvalidInputError: the template's category was never recorded, or both a
                template and a template category were given.
        """
        person = as_identifier(identifier)
        if template is not None:
            template_category = self._category_of(business_id, template, template_category, at)
        request = check_request(
            business_id=business_id,
            category=self._category(business_id, category),
            channel=channel,
            sender=sender,
            template_category=template_category,
            at=at or datetime.now(UTC),
            in_service_window=bool(in_service_window),
        )
        chosen = get_policy(policy, request.channel)
        decision, read = self._decide(chosen, request, person, source, at=at, known_at=known_at)
        if in_service_window is None and self._window_may_open(chosen, request, decision):
            decision = self._in_service_window(chosen, request, person, decision, known_at)
        subject_id = decision.subject_id
        sends = (list) if subject_id is None else (lambda: read.sends(subject_id))
        return self._addressed(limited(chosen, decision, person, sends))

    def decide_on_record(  # noqa: PLR0913 (a send has this many facts)
        self,
        record: ConsentRecord | None,
        person: Identifier,
        *,
        business_id: str,
        category: str,
        channel: Channel | str,
        sender: str | None,
        template_category: TemplateCategory | str | None,
        policy: str | None,
        at: datetime,
    ) -> Decision:
        """The decision on a send at ``at``, from the person's record as loaded (or none).

        What :meth:`check` decides, folded from ``record`` itself, with every rule: what
        a send is recorded with, in the same attempt that saves it, so that racing senders
        cannot both take the last place under a limit.
        """
        request = check_request(
            business_id=business_id,
            category=self._category(business_id, category),
            channel=channel,
            sender=sender,
            template_category=template_category,
            at=at,
            in_service_window=False,
        )
        chosen = get_policy(policy, request.channel)
        now = datetime.now(UTC)
        source = NO_CONSENT if record is None else RecordSource(record, at, now)
        subject_id = None if record is None else record.id
        decision = decide(chosen, request, subject_id=subject_id, recipient=person, source=source)
        if self._window_may_open(chosen, request, decision):
            decision = self._in_service_window(
                chosen, request, person, decision, now, record=record
            )
        sends = (list) if record is None else (lambda: record.sends(at, now))
        return self._addressed(limited(chosen, decision, person, sends))

    def _category(self, business_id: str, name: str) -> Category | str:
        """A built-in category by name (no look-up); one of the business's own, looked up.

        A business never redefines a category, so what was looked up once is kept.
        """
        if name in CATEGORIES:
            return name
        found = self._defined.get((business_id, name))
        if found is None:
            found = self._catalogue().category(business_id, name)
            self._defined[business_id, name] = found
        return found

    def _addressed(self, decision: Decision) -> Decision:
        """The decision, denied if it would allow a send to a person whose key is gone."""
        if decision.allowed and not self._addressable(decision.subject_id):
            return erased(decision)
        return decision

    def _addressable(self, subject_id: UUID | None) -> bool:
        """Whether the person's data key is there: a person whose key is gone gets nothing.

        Read from the store on every allowed check, not from the key cache: a key destroyed
        by another process must stop sends at once.
        """
        return subject_id is None or self._books.recorder.select_wrapped_key(subject_id) is not None

    def _category_of(
        self,
        business_id: str,
        template: tuple[str, str],
        given: TemplateCategory | str | None,
        at: datetime | None,
    ) -> TemplateCategory:
        """The category of the template in force at the send; the caller gave none."""
        if given is not None:
            msg = "give the template or its category, not both: the ledger knows its category"
            raise InvalidInputError(msg)
        return self._catalogue().category_of_send(business_id, template, at)

    def _window_may_open(self, chosen: Policy, request: CheckRequest, decision: Decision) -> bool:
        """Whether an open service window would turn this denial into an allowance."""
        return (
            decision.reason is Reason.NO_CONSENT
            and decision.subject_id is not None
            and request.template_category in chosen.service_window_exempt
        )

    def _in_service_window(  # noqa: PLR0913 (a decision and what it was made of)
        self,
        chosen: Policy,
        request: CheckRequest,
        person: Identifier,
        decision: Decision,
        known_at: datetime | None,
        *,
        record: ConsentRecord | None = None,
    ) -> Decision:
        """The decision again if the person wrote to the sender in the last 24 hours."""
        # Imported here: only a check that may open a service window reads a record.
        from consent_ledger.model.consent_record import SERVICE_WINDOW  # noqa: PLC0415

        assert decision.subject_id is not None  # noqa: S101 (see _window_may_open)
        record = record or self._books.consent_record(decision.subject_id)
        last = record.last_inbound(request.sender, request.at, known_at or END_OF_TIME)
        if last is None or request.at - last >= SERVICE_WINDOW:
            return decision
        # The person has no consent to this key (that is why the answer was no-consent):
        # only the window changes, so the rules run again on nothing, not on a new read.
        return decide(
            chosen,
            request._replace(in_service_window=True),
            subject_id=decision.subject_id,
            recipient=person,
            source=NO_CONSENT,
        )

    def _decide(  # noqa: PLR0913 (a check has this many facts)
        self,
        chosen: Policy,
        request: CheckRequest,
        person: Identifier,
        view: ConsentView | None,
        *,
        at: datetime | None,
        known_at: datetime | None,
    ) -> tuple[Decision, _Source]:
        """The decision on consent, and the source it read (which also holds the sends)."""
        lookup = self._books.lookup(request.business_id, person)
        now = at is None and known_at is None
        if view is not None and now:
            # One round trip: the view finds the person, their consent and sends together.
            subject_id, state, platform, sends = view.consent_by_lookup(
                lookup, request.channel, request.category, request.sender
            )
            if subject_id is not None:
                prefetched = _Prefetched(state, platform, sends)
                decision = decide(
                    chosen, request, subject_id=subject_id, recipient=person, source=prefetched
                )
                return decision, prefetched
        subject_id = self._books.recorder.find_subject(lookup)
        source: _Source = view if view is not None and now else NO_CONSENT
        if subject_id is not None and (view is None or not now):
            record = self._books.consent_record(subject_id)
            source = RecordSource(record, request.at, known_at or datetime.now(UTC))
        decision = decide(chosen, request, subject_id=subject_id, recipient=person, source=source)
        return decision, source

    def audience(  # noqa: PLR0913 (a send has this many facts)
        self,
        candidates: Iterable[Candidate],
        *,
        business_id: str,
        category: str,
        channel: Channel | str = Channel.WHATSAPP,
        sender: str | None = None,
        template_category: TemplateCategory | str | None = None,
        policy: str | None = None,
    ) -> Iterator[Recipient]:
        """The candidates a status view found, judged by ``policy`` now, identifiers opened.

        Yields those a message may be sent to, by the same rules as :meth:`check` (a
        candidate already has granted consent; expiry, the person's marketing stop and the
        recipient's country are judged here). A candidate whose data key is gone (erased)
        is skipped: there is nobody to address. :meth:`audience_pages` does the same a
        page at a time, in columns (what ``consent-ledger audience`` uses).

        Raises (at once, before anything is yielded):
            UnknownCategoryError: the category is none of the business's.
            UnknownPolicyError: no policy preset has that name.
            ConsentRuleError: the template category cannot go to anyone under the policy
                (a MARKETING template for a category that is not marketing).
        """
        pages = self.audience_pages(
            map(CandidatePage.of, batched(candidates, PAGE_ROWS)),
            business_id=business_id,
            category=category,
            channel=channel,
            sender=sender,
            template_category=template_category,
            policy=policy,
        )
        return (recipient for page in pages for recipient in page.recipients())

    def audience_pages(  # noqa: PLR0913 (a send has this many facts)
        self,
        pages: Iterable[CandidatePage],
        *,
        business_id: str,
        category: str,
        channel: Channel | str = Channel.WHATSAPP,
        sender: str | None = None,
        template_category: TemplateCategory | str | None = None,
        policy: str | None = None,
    ) -> Iterator[RecipientPage]:
        """:meth:`audience`, a page of candidates at a time: each page's recipients.

        Raises (at once): as :meth:`audience`.
        """
        request = check_request(
            business_id=business_id,
            category=self._category(business_id, category),
            channel=channel,
            sender=sender,
            template_category=template_category,
            at=datetime.now(UTC),
            in_service_window=False,
        )
        chosen = get_policy(policy, request.channel)
        denial = template_denial(chosen, request)
        if denial is not None:
            raise ConsentRuleError(denial.detail)
        return self._allowed(pages, chosen, request)

    def _allowed(
        self, pages: Iterable[CandidatePage], chosen: Policy, request: CheckRequest
    ) -> Iterator[RecipientPage]:
        moment = utc_text(request.at)  # candidates' times are text in this form
        for page in pages:
            live = [
                (expires is None or expires > moment)
                and not (stops and stopping(chosen, request, stops))
                for expires, stops in zip(page.expires_at, page.marketing, strict=True)
            ]
            recipients = self._opened(page if all(live) else page.only(live), chosen)
            if chosen.recipient_countries is not None:
                recipients = recipients.in_countries_of(chosen)
            if recipients.identifiers:
                yield recipients

    def _opened(self, candidates: CandidatePage, chosen: Policy) -> RecipientPage:
        """The candidates whose data key is still there, identifiers opened."""
        hex_ids = [subject_id.replace("-", "") for subject_id in candidates.subject_id]
        wrapped = self._books.recorder.select_wrapped_keys(hex_ids)
        if len(wrapped) < len(hex_ids):  # erased: nobody to address
            candidates = candidates.only(h in wrapped for h in hex_ids)
            hex_ids = [h for h in hex_ids if h in wrapped]
        values = self._books.keyring.open_identifiers(
            hex_ids,
            [wrapped[h] for h in hex_ids],
            candidates.identifier_nonce,
            candidates.identifier_ct,
        )
        return RecipientPage(values, candidates, chosen.name)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Successive lists of up to ``size`` items (itertools.batched arrives in 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _Source(ConsentSource, Protocol):
    """A consent source that also knows the person's sends."""

    def sends(self, subject_id: UUID) -> list[SentMessage]:
        """The person's sends."""


class RecordSource:
    """Consent read from one person's record, as it was at a moment and known at another."""

    def __init__(self, record: ConsentRecord, at: datetime, known_at: datetime) -> None:
        """Fold ``record``'s effects visible at ``at`` as known at ``known_at``."""
        self._effects = visible(record.effects(), at, known_at)
        self._sends = functools.partial(record.sends, at, known_at)

    def sends(self, subject_id: UUID) -> list[SentMessage]:
        """The messages sent to the person by ``at``, as known at ``known_at``."""
        del subject_id  # one record only
        return self._sends()

    def consent(
        self, subject_id: UUID, channel: str, category: str, sender: str | None
    ) -> ConsentState | None:
        """The base state for one channel, category and sender."""
        del subject_id  # one record only
        return base_state(self._effects, channel, category, sender)

    def platform(self, subject_id: UUID) -> list[PlatformState]:
        """The latest marketing stop or resume per sender."""
        del subject_id
        return platform_states(self._effects)


class _Prefetched:
    """A source whose answers for the one person and key asked about have been read."""

    def __init__(
        self,
        state: ConsentState | None,
        platform: list[PlatformState],
        sends: Callable[[], list[SentMessage]],
    ) -> None:
        self._state = state
        self._platform = platform
        self._sends = sends

    def sends(self, *_: object) -> list[SentMessage]:
        """The sends read with the lookup (decoded now)."""
        return self._sends()

    def consent(self, *_: object) -> ConsentState | None:
        """The state read with the lookup."""
        return self._state

    def platform(self, *_: object) -> list[PlatformState]:
        """The marketing stops read with it."""
        return self._platform


class _NoConsent:
    """The source for a person the ledger has never seen."""

    def consent(self, *_: object) -> ConsentState | None:
        """Nothing."""
        return None

    def platform(self, *_: object) -> list[PlatformState]:
        """Nothing."""
        return []

    def sends(self, *_: object) -> list[SentMessage]:
        """Nothing."""
        return []


NO_CONSENT = _NoConsent()
