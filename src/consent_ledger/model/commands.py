"""Commands: what a caller asks the ledger to record, validated before anything is written.

Each command is a frozen pydantic model. Building one checks every field (identifiers are
normalised, category names well formed, times must carry a time zone), so a
command that reaches :class:`~consent_ledger.ledger.ConsentLedger` is well formed;
the ledger then checks it against what it holds (notices, businesses, earlier events).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import mimetypes
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, Self

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, model_validator

from consent_ledger.exceptions import InvalidInputError
from consent_ledger.model.identifiers import Identifier
from consent_ledger.model.taxonomy import Channel, LegalBasis, Method, TemplateCategory
from consent_ledger.model.values import (
    Actor,
    Categories,
    CategoryName,
    Immutable,
    Language,
    Provenance,
    Slug,
    utc_seconds,
)

if TYPE_CHECKING:
    from pathlib import Path

MAX_EVIDENCE_BYTES = 1024 * 1024
MAX_TEXT_CHARS = 100_000
CLOCK_SKEW = timedelta(minutes=5)
MAX_VERSION = 2**63 - 1
"""The largest version a store can hold (a signed 64-bit integer in SQLite and PostgreSQL)."""
_VERSION_DIGITS = len(str(MAX_VERSION))
_JURISDICTION = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def _parse_identifier(value: Any) -> Any:
    return Identifier.parse(value) if isinstance(value, str) else value


def _check_jurisdiction(value: str) -> str:
    if not _JURISDICTION.fullmatch(value):
        msg = f"{value!r} is not a jurisdiction: give an ISO 3166 code such as 'IT' or 'US-CA'"
        raise InvalidInputError(msg)
    return value


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        msg = f"{value!r} is not an IP address"
        raise InvalidInputError(msg) from None


class NoticeSelector(NamedTuple):
    """A notice as commands name it: ``ID@VERSION``, or ``ID`` for its latest version."""

    notice_id: str
    version: int | None

    @classmethod
    def parse(cls, text: str) -> NoticeSelector:
        """Read ``ID@VERSION`` or ``ID``.

        Raises:
            InvalidInputError: the version is not a whole number from 1 to MAX_VERSION.
        """
        notice_id, sep, version = text.partition("@")
        if not sep:
            return cls(notice_id, None)
        # ASCII digits only (str.isdigit() takes '²', which int() refuses), and few enough
        # for int() (it refuses thousands) and for the store.
        digits = version.isascii() and version.isdigit() and len(version) <= _VERSION_DIGITS
        if not digits or not 1 <= int(version) <= MAX_VERSION:
            msg = f"{text!r} does not name a notice version: write ID@VERSION, e.g. web-form@2"
            raise InvalidInputError(msg)
        return cls(notice_id, int(version))

    def __str__(self) -> str:
        """``ID@VERSION``, or ``ID`` when the latest version is meant."""
        return self.notice_id if self.version is None else f"{self.notice_id}@{self.version}"


def _parse_notice(value: Any) -> Any:
    return NoticeSelector.parse(value) if isinstance(value, str) else value


IdentifierField = Annotated[Identifier, BeforeValidator(_parse_identifier)]
NoticeField = Annotated[NoticeSelector, BeforeValidator(_parse_notice)]
Jurisdiction = Annotated[str, AfterValidator(_check_jurisdiction)]
IPAddress = Annotated[str, AfterValidator(_check_ip)]


class Evidence(Immutable):
    """What backs a consent decision: a note, a file, where it came from. Always sealed."""

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    file_name: str | None = None
    media_type: str | None = None
    content: str | None = Field(default=None, description="file content, base64")
    sha256: str | None = None
    ip: IPAddress | None = None
    user_agent: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _check_not_empty(self) -> Self:
        if not any((self.text, self.content, self.ip, self.user_agent)):
            msg = "evidence must hold a text, a file, an IP address or a user agent"
            raise InvalidInputError(msg)
        return self

    @classmethod
    def from_file(cls, path: Path, **details: str | None) -> Evidence:
        """Evidence holding a file (a signed form, a screenshot, a recording).

        Raises:
            InvalidInputError: the file cannot be read or is larger than 1 MiB.
        """
        try:
            data = path.read_bytes()
        except OSError as e:
            msg = f"cannot read evidence file {path}: {e.strerror}"
            raise InvalidInputError(msg) from None
        if len(data) > MAX_EVIDENCE_BYTES:
            msg = f"evidence file {path} has {len(data)} bytes; the limit is {MAX_EVIDENCE_BYTES}"
            raise InvalidInputError(msg)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return cls.from_bytes(data, file_name=path.name, media_type=media_type, **details)

    @classmethod
    def from_bytes(
        cls, data: bytes, *, file_name: str, media_type: str, **details: str | None
    ) -> Evidence:
        """Evidence holding ``data`` as a file of that name and type, with its SHA-256."""
        return cls(
            file_name=file_name,
            media_type=media_type,
            content=base64.b64encode(data).decode(),
            sha256=hashlib.sha256(data).hexdigest(),
            **details,
        )

    def summary(self) -> str:
        """One line that tells an auditor what the evidence is."""
        parts = []
        if self.text:
            text = " ".join(self.text.split())
            parts.append(repr(text if len(text) <= 60 else text[:57] + "..."))  # noqa: PLR2004
        if self.content is not None:
            size = len(base64.b64decode(self.content))
            parts.append(f"file {self.file_name} ({size} bytes, sha256 {(self.sha256 or '')[:12]})")
        if self.ip:
            parts.append(f"ip {self.ip}")
        if self.user_agent:
            parts.append(f"user agent {self.user_agent[:40]!r}")
        return "; ".join(parts)


class Command(Immutable):
    """Base of commands."""


class RegisterBusiness(Command):
    """Register a business that will publish notices and send messages."""

    business_id: Slug
    display_name: str = Field(min_length=1, max_length=200)


class PublishNotice(Command):
    """Publish a new version of an opt-in notice (the first version creates the notice)."""

    business_id: Slug
    notice_id: Slug
    language: Language
    channel: Channel = Channel.WHATSAPP
    categories: Categories = Field(min_length=1)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    policy_url: str | None = None


def _check_description(value: str) -> str:
    if not value.strip() or not value.isprintable():
        msg = f"{value!r} is not a description: give one line that says what the messages are"
        raise InvalidInputError(msg)
    return value.strip()


class DefineCategory(Command):
    """Define a category of a business's own, beside the built-in ones."""

    business_id: Slug
    name: CategoryName
    description: Annotated[str, AfterValidator(_check_description)] = Field(max_length=200)
    template_category: TemplateCategory
    channels: tuple[Channel, ...] = Field(default=tuple(Channel), min_length=1)


class ConsentCommand(Command):
    """Base of the commands about one person's consent."""

    business_id: Slug
    identifier: IdentifierField
    sender: Slug | None = None
    method: Method
    collection_point: str | None = Field(default=None, max_length=500)
    actor: Actor = "subject"
    occurred_at: AwareDatetime = Field(default_factory=now)
    evidence: Evidence | None = None

    @model_validator(mode="after")
    def _check_not_in_future(self) -> Self:
        if self.occurred_at > now() + CLOCK_SKEW:
            msg = (
                f"the decision is dated {utc_seconds(self.occurred_at)}, which is in the future: "
                "record decisions that have happened"
            )
            raise InvalidInputError(msg)
        return self

    def provenance(self) -> Provenance:
        """How, where, by whom and when, as the events record it."""
        return Provenance(
            method=self.method,
            collection_point=self.collection_point,
            actor=self.actor,
            occurred_at=self.occurred_at.astimezone(UTC),
        )


class OptIn(ConsentCommand):
    """Record that a person agreed to messages of some categories, having seen a notice."""

    channel: Channel = Channel.WHATSAPP
    categories: Categories = Field(min_length=1)
    notice: NoticeField
    expires_at: AwareDatetime | None = None
    awaiting_confirmation: bool = False
    legal_basis: LegalBasis = LegalBasis.CONSENT
    jurisdiction: Jurisdiction | None = None


class ConfirmOptIn(ConsentCommand):
    """Record that a person confirmed an opt-in that awaited confirmation (double opt-in)."""

    channel: Channel = Channel.WHATSAPP
    categories: Categories = Field(min_length=1)


class OptOut(ConsentCommand):
    """Record a withdrawal: some categories or all (``None``), on a channel or all (``None``)."""

    channel: Channel | None = Channel.WHATSAPP
    categories: Categories | None = Field(default=None, min_length=1)
    reason: str | None = Field(default=None, max_length=500)


class RecordPlatformPreference(ConsentCommand):
    """Record a person's marketing stop (or resume) for a sender on WhatsApp itself."""

    stopped: bool
    method: Method = Method.PLATFORM


class RecordSignal(ConsentCommand):
    """Record something a platform reported about a person that changes no consent.

    A HELP reply, an opt-out word inside a longer message (for review), a delivery error
    such as 131049 or 131026: kept in the log as evidence, never acted on as consent.
    """

    signal: str = Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")
    detail: str = Field(min_length=1, max_length=500)
    code: int | None = None
    method: Method = Method.PLATFORM


class ChangeCategories(ConsentCommand):
    """Record that a person granted some categories and withdrew others in one decision."""

    channel: Channel = Channel.WHATSAPP
    grant: Categories = ()
    withdraw: Categories = ()
    notice: NoticeField | None = None
    expires_at: AwareDatetime | None = None
    legal_basis: LegalBasis = LegalBasis.CONSENT
    jurisdiction: Jurisdiction | None = None


class RecordSend(ConsentCommand):
    """Record that a message went to a person: the evidence of one use of their consent.

    ``message_id`` (a WhatsApp ``wamid``, a provider's id) is kept only as a keyed hash, and
    a send is recorded once per message id. ``occurred_at`` is when it was sent. The
    template, if named, gives the template category in force at the send; else
    ``template_category``, else the category's own.
    """

    message_id: str = Field(min_length=1, max_length=500)
    channel: Channel = Channel.WHATSAPP
    category: Slug
    template_name: str | None = Field(default=None, max_length=512)
    template_language: str | None = Field(default=None, max_length=20)
    template_category: TemplateCategory | None = None
    policy: str | None = None
    method: Method = Method.API
