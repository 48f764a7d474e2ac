"""May this message be sent? The send-time decision, under a named policy.

A policy is data (``presets/*.json``), not code paths: it says which recipient countries
are allowed, whether a MARKETING template needs consent to a marketing category, whether a
person's WhatsApp marketing stop is honoured, and which template categories may go out in
an open customer service window without an opt-in. :func:`decide` applies the policy's
rules in a fixed order and names the first that fails, with the event the decision rests on.

Consent comes from a :class:`ConsentSource`: a consent record folded on the spot (exact at
any moment) or a status view kept up to date by a projection (fast, for now only).
"""

from __future__ import annotations

import functools
import json
from datetime import UTC
from enum import StrEnum
from itertools import compress
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from consent_ledger.exceptions import InvalidInputError
from consent_ledger.model.identifiers import Identifier, IdentifierKind
from consent_ledger.model.plain import utc_seconds
from consent_ledger.model.status import PlatformState, State, expire, marketing_stop
from consent_ledger.model.taxonomy import (
    CATEGORIES,
    Category,
    Channel,
    TemplateCategory,
    unknown_category,
)
from consent_ledger.sending.limits import frequency_denial, quiet_hours_denial
from consent_ledger.sending.policy import Policy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from datetime import datetime
    from uuid import UUID

    from consent_ledger.model.sends import SentMessage
    from consent_ledger.model.status import ConsentState

_KINDS = {kind.value: kind for kind in IdentifierKind}
DEFAULT_POLICIES = {Channel.WHATSAPP: "whatsapp-2025"}
FALLBACK_POLICY = "consent-only"
PRESETS = Path(__file__).with_name("presets")


class UnknownPolicyError(InvalidInputError):
    """No policy preset has the given name."""


class Reason(StrEnum):
    """Why a message is allowed or denied. The first two allow; the rest deny."""

    CONSENTED = "consented"
    SERVICE_WINDOW = "service-window"
    NO_CONSENT = "no-consent"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    PENDING_CONFIRMATION = "pending-confirmation"
    PLATFORM_MARKETING_STOP = "platform-marketing-stop"
    COUNTRY_NOT_ALLOWED = "country-not-allowed"
    TEMPLATE_CATEGORY_MISMATCH = "template-category-mismatch"
    ERASED = "erased"
    QUIET_HOURS = "quiet-hours"
    FREQUENCY_LIMIT = "frequency-limit"


_DENIED_BY_STATE = {
    State.WITHDRAWN: Reason.WITHDRAWN,
    State.EXPIRED: Reason.EXPIRED,
    State.PENDING: Reason.PENDING_CONFIRMATION,
}


@functools.cache
@functools.cache
def policies() -> dict[str, Policy]:
    """The policy presets shipped with the ledger, by name (read once per process)."""
    loaded = [Policy.from_json(json.loads(text)) for text in _preset_texts()]
    return {policy.name: policy for policy in sorted(loaded, key=lambda p: p.name)}


def _preset_texts() -> list[str]:
    """The JSON text of each preset, read from the folder beside this module if it is one.

    importlib.resources, with the tempfile, shutil and zipfile modules it imports, would
    add about a tenth to the start of a process that checks one send; it is needed only
    when the package is installed in a zip archive.
    """
    if PRESETS.is_dir():
        return [path.read_text(encoding="utf-8") for path in sorted(PRESETS.glob("*.json"))]
    from importlib import resources  # noqa: PLC0415

    folder = resources.files(__package__) / PRESETS.name
    return [e.read_text(encoding="utf-8") for e in folder.iterdir() if e.name.endswith(".json")]


def get_policy(name: str | None, channel: Channel) -> Policy:
    """The named preset, a policy file (a path ending in ``.json``), or the channel's default.

    Raises:
        UnknownPolicyError: no preset has that name.
        InvalidInputError: the policy file cannot be read, or is not a policy (the field
            that is wrong named).
    """
    name = name or DEFAULT_POLICIES.get(channel, FALLBACK_POLICY)
    if name.endswith(".json"):
        return policy_file(name)
    try:
        return policies()[name]
    except KeyError:
        known = ", ".join(policies())
        msg = f"unknown policy {name!r}; policies: {known}"
        raise UnknownPolicyError(msg) from None


def policy_file(path: str) -> Policy:
    """The policy a business wrote, in the presets' format (see README, "Sends and limits").

    Read again only when the file changes (its size or modification time), so a service
    checking every message does not parse it every time.

    Raises:
        InvalidInputError: the file cannot be read, is not JSON, or is not a policy.
    """
    try:
        stat = Path(path).stat()
    except OSError as e:
        msg = f"cannot read the policy file {path}: {e.strerror or e}"
        raise InvalidInputError(msg) from None
    return _policy_file(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _policy_file(path: str, mtime_ns: int, size: int) -> Policy:
    del mtime_ns, size  # they only key the cache
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        msg = f"cannot read the policy file {path}: {reason}"
        raise InvalidInputError(msg) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        msg = f"policy file {path}: not JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        raise InvalidInputError(msg) from None
    try:
        return Policy.from_json(data)
    except InvalidInputError as e:
        msg = f"policy file {path}: {e}"
        raise InvalidInputError(msg) from None


def recipient_country(identifier: Identifier) -> str | None:
    """The country of a recipient, from their number (or a BSUID's prefix); None if unknown."""
    return identifier.region


class ConsentSource(Protocol):
    """Where a check finds consent: base states (before expiry) and marketing stops.

    A source that can also answer ``consent_by_lookup(lookup, channel, category, sender)``
    with (subject id, base state, stops) lets a check skip the ledger's own lookup.
    """

    def consent(
        self, subject_id: UUID, channel: str, category: str, sender: str | None
    ) -> ConsentState | None:
        """The base consent state for one channel, category and sender, if any."""

    def platform(self, subject_id: UUID) -> Iterable[PlatformState]:
        """The latest marketing stop or resume per sender."""


class Candidate(NamedTuple):
    """Someone a status view found with current, granted consent to a category.

    Plain values as the view holds them (times in UTC ISO 8601 with microseconds), so an
    audience of a hundred thousand people costs no object building beyond this tuple.
    """

    subject_id: str
    identifier_kind: str
    identifier_nonce: bytes
    identifier_ct: bytes
    since: str
    expires_at: str | None
    notice: str | None
    event_version: int
    event_type: str
    marketing: tuple[PlatformState, ...] = ()


class CandidatePage(NamedTuple):
    """A page of candidates as columns: the i-th of every column is the i-th candidate.

    Columns in :class:`Candidate`'s order. An audience of a hundred thousand people is read,
    filtered and opened a page at a time, column by column, with no object per person.
    """

    subject_id: tuple[str, ...]
    identifier_kind: tuple[str, ...]
    identifier_nonce: tuple[bytes, ...]
    identifier_ct: tuple[bytes, ...]
    since: tuple[str, ...]
    expires_at: tuple[str | None, ...]
    notice: tuple[str | None, ...]
    event_version: tuple[int, ...]
    event_type: tuple[str, ...]
    marketing: tuple[tuple[PlatformState, ...], ...]

    @classmethod
    def of(cls, candidates: Sequence[Candidate]) -> CandidatePage:
        """The page of these candidates."""
        if not candidates:
            return cls._make(() for _ in cls._fields)
        return cls._make(zip(*candidates, strict=True))

    def only(self, keep: Iterable[object]) -> CandidatePage:
        """The candidates whose ``keep`` is true, in order."""
        kept = [bool(k) for k in keep]
        return CandidatePage._make(tuple(compress(column, kept)) for column in self)

    def candidates(self) -> Iterator[Candidate]:
        """Each candidate, as one object."""
        return map(Candidate._make, zip(*self, strict=True))


class Recipient(NamedTuple):
    """Someone a message may be sent to now, and the consent that says so."""

    identifier: Identifier
    candidate: Candidate
    policy: str


class RecipientPage(NamedTuple):
    """A page of recipients: the candidates a message may go to, identifiers opened.

    ``identifiers[i]`` is the opened value of ``candidates``' i-th identifier (of kind
    ``candidates.identifier_kind[i]``).
    """

    identifiers: list[str]
    candidates: CandidatePage
    policy: str

    def in_countries_of(self, policy: Policy) -> RecipientPage:
        """The recipients in a country the policy lets messages go to."""
        keep = [
            country_allowed(policy, Identifier(_KINDS[kind], value))
            for kind, value in zip(self.candidates.identifier_kind, self.identifiers, strict=True)
        ]
        if all(keep):
            return self
        return RecipientPage(
            list(compress(self.identifiers, keep)), self.candidates.only(keep), self.policy
        )

    def recipients(self) -> Iterator[Recipient]:
        """Each recipient, as one object."""
        for value, candidate in zip(self.identifiers, self.candidates.candidates(), strict=True):
            yield Recipient(
                Identifier(_KINDS[candidate.identifier_kind], value), candidate, self.policy
            )


class CheckRequest(NamedTuple):
    """What a sender wants to send: to whom (by business), on which channel, of what kind."""

    business_id: str
    channel: Channel
    category: str
    sender: str | None
    template_category: TemplateCategory
    own_template_category: TemplateCategory
    """The template category of the category's own messages (offers: MARKETING)."""
    at: datetime
    in_service_window: bool = False


class Decision(NamedTuple):
    """Allowed or denied, why, and the event the decision rests on."""

    allowed: bool
    reason: Reason
    detail: str
    policy: str
    request: CheckRequest
    subject_id: UUID | None = None
    event_version: int | None = None
    event_type: str | None = None


def check_request(  # noqa: PLR0913 (a request has this many parts)
    *,
    business_id: str,
    category: Category | str,
    channel: Channel | str,
    sender: str | None,
    template_category: TemplateCategory | str | None,
    at: datetime,
    in_service_window: bool,
) -> CheckRequest:
    """A validated request.

    ``category``: the business's category (see ``Catalogue.category``), or the name of a
    built-in one.

    Raises:
        UnknownCategoryError: ``category`` names no built-in category.
        InvalidInputError: the channel or template category is unknown.
    """
    known = CATEGORIES.get(category) if isinstance(category, str) else category
    if known is None:
        raise unknown_category(str(category), CATEGORIES, whose="built-in categories")
    template = template_category or known.template_category
    try:
        return CheckRequest(
            business_id=business_id,
            channel=_CHANNELS[channel],
            category=known.name,
            sender=sender,
            template_category=_TEMPLATE_CATEGORIES[template],
            own_template_category=known.template_category,
            at=at if at.tzinfo is UTC else at.astimezone(UTC),
            in_service_window=in_service_window,
        )
    except KeyError as e:
        msg = f"{e.args[0]!r} is not a channel or template category"
        raise InvalidInputError(msg) from None


# Lookups that accept members and their values alike, without calling the enum classes.
_CHANNELS: dict[str, Channel] = {**{c.value: c for c in Channel}, **{c: c for c in Channel}}
_TEMPLATE_CATEGORIES: dict[str, TemplateCategory] = {
    **{t.value: t for t in TemplateCategory},
    **{t: t for t in TemplateCategory},
}


def decide(
    policy: Policy,
    request: CheckRequest,
    *,
    subject_id: UUID | None,
    recipient: Identifier,
    source: ConsentSource,
) -> Decision:
    """Apply ``policy`` to ``request`` for the person ``subject_id`` (None: not in the ledger).

    The rules, in order, the first that fails naming the reason: the recipient's country; a
    MARKETING template needs a marketing category; consent for the category (an open
    service window may stand in for a missing one, for the template categories the policy
    exempts); the person's own marketing stop on the platform.
    """
    denial = _country_rule(policy, request, recipient) or template_denial(policy, request)
    if denial is not None:
        return denial
    state = None
    if subject_id is not None:
        base = source.consent(subject_id, request.channel, request.category, request.sender)
        state = expire(base, request.at)
    if state is None or state.state is not State.GRANTED:
        return _without_consent(policy, request, subject_id, state)
    if request.template_category is TemplateCategory.MARKETING:
        assert subject_id is not None  # consent was found  # noqa: S101
        stop = stopping(policy, request, source.platform(subject_id))
        if stop is not None:
            whom = f"sender {stop.sender}" if stop.sender else "every sender"
            detail = f"the person stopped marketing from {whom} on WhatsApp on {_time(stop.since)}"
            reason = Reason.PLATFORM_MARKETING_STOP
            return _decision(policy, request, reason, detail, subject_id=subject_id, rests_on=stop)
    detail = f"consent to {request.category} granted since {_time(state.since)}"
    if state.expires_at is not None:
        detail += f", until {_time(state.expires_at)}"
    return _decision(
        policy, request, Reason.CONSENTED, detail, subject_id=subject_id, rests_on=state
    )


def limited(
    policy: Policy,
    decision: Decision,
    recipient: Identifier,
    sends: Callable[[], Sequence[SentMessage]],
) -> Decision:
    """``decision``, denied if the send would fall in quiet hours or break a frequency limit.

    Only an allowed send is judged: quiet hours first (the time of day), then the limits,
    which read the person's past sends (``sends``, asked for only then).
    """
    if not decision.allowed or not policy.limits_sends:
        return decision
    request = decision.request
    denial = quiet_hours_denial(
        policy.quiet_hours, request.at, request.template_category, recipient
    ) or frequency_denial(
        policy.frequency_limits,
        sends() if policy.frequency_limits else (),
        at=request.at,
        category=request.category,
        template=request.template_category,
        recipient=recipient,
    )
    if denial is None:
        return decision
    return decision._replace(allowed=False, reason=Reason(denial.reason), detail=denial.detail)


def erased(decision: Decision) -> Decision:
    """``decision`` denied: the person's data key is gone, so nothing may go to them."""
    detail = "the person's personal data was erased (their data key is gone): nobody to address"
    return decision._replace(allowed=False, reason=Reason.ERASED, detail=detail)


def country_allowed(policy: Policy, recipient: Identifier) -> bool:
    """Whether the policy lets messages go to the recipient's country."""
    allowed = policy.recipient_countries
    # Only policies with a country rule pay for finding the country.
    return allowed is None or recipient_country(recipient) in allowed


def stopping(
    policy: Policy, request: CheckRequest, platform: Iterable[PlatformState]
) -> PlatformState | None:
    """The person's marketing stop that bars this message, if the policy honours stops."""
    if request.template_category is not TemplateCategory.MARKETING or not (
        policy.honour_platform_marketing_stop
    ):
        return None
    return marketing_stop(platform, request.sender)


def _country_rule(policy: Policy, request: CheckRequest, recipient: Identifier) -> Decision | None:
    if country_allowed(policy, recipient):
        return None
    country = recipient_country(recipient)
    where = f"in {country}" if country else "in no known country"
    detail = f"the recipient's number is {where}, outside the policy's countries"
    return _decision(policy, request, Reason.COUNTRY_NOT_ALLOWED, detail)


def template_denial(policy: Policy, request: CheckRequest) -> Decision | None:
    """The denial every recipient of this request gets, if its template breaks the policy."""
    own = request.own_template_category  # the business's own categories have theirs too
    if (
        request.template_category is TemplateCategory.MARKETING
        and policy.marketing_needs_marketing_category
        and own is not TemplateCategory.MARKETING
    ):
        detail = (
            f"a MARKETING template needs consent to a marketing category; "
            f"{request.category} is {own}"
        )
        return _decision(policy, request, Reason.TEMPLATE_CATEGORY_MISMATCH, detail)
    return None


def _without_consent(
    policy: Policy, request: CheckRequest, subject_id: UUID | None, state: ConsentState | None
) -> Decision:
    if state is not None:
        detail = f"consent to {request.category} {state.state} since {_time(state.since)}"
        reason = _DENIED_BY_STATE[state.state]
        return _decision(policy, request, reason, detail, subject_id=subject_id, rests_on=state)
    if request.in_service_window and request.template_category in policy.service_window_exempt:
        detail = f"a customer service window is open: {request.template_category} allowed"
        return _decision(policy, request, Reason.SERVICE_WINDOW, detail, subject_id=subject_id)
    detail = f"no consent to {request.category} on {request.channel}"
    return _decision(policy, request, Reason.NO_CONSENT, detail, subject_id=subject_id)


def _decision(  # noqa: PLR0913 (a decision has this many parts)
    policy: Policy,
    request: CheckRequest,
    reason: Reason,
    detail: str,
    *,
    subject_id: UUID | None = None,
    rests_on: ConsentState | PlatformState | None = None,
) -> Decision:
    return Decision(
        allowed=reason in _ALLOWING,
        reason=reason,
        detail=detail,
        policy=policy.name,
        request=request,
        subject_id=subject_id,
        event_version=rests_on.event_version if rests_on else None,
        event_type=rests_on.event_type if rests_on else None,
    )


_ALLOWING = frozenset({Reason.CONSENTED, Reason.SERVICE_WINDOW})


def _time(moment: datetime) -> str:
    return utc_seconds(moment)
