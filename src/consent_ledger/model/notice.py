"""Opt-in notices: a business's wording, in numbered versions never edited.

An opt-in must name a published notice of the same business, for the same channel,
whose categories cover the ones granted; the text must name the business.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from consent_ledger.exceptions import NoticeNotFoundError, NoticeRuleError
from consent_ledger.model.aggregate import ID_NAMESPACE, Aggregate
from consent_ledger.model.taxonomy import Channel
from consent_ledger.model.values import (
    Categories,
    Immutable,
    Language,
    NoticeRef,
    Slug,
)

if TYPE_CHECKING:
    from consent_ledger.model.business import Business


MAX_NOTICE_CHARS = 100_000


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
        return uuid.uuid5(ID_NAMESPACE, f"notice/{business_id}/{notice_id}")

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
            UnknownCategoryError: a category is none of the business's.
            CategoryRuleError: a category was retired, or is for other channels.
        """
        business.check_grantable(categories, channel, "notices")
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
