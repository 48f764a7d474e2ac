"""A business that sends messages and publishes opt-in notices."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import Field

from consent_ledger.model.aggregate import ID_NAMESPACE, Aggregate
from consent_ledger.model.values import Slug  # noqa: TC001 (pydantic reads it at runtime)


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
        return uuid.uuid5(ID_NAMESPACE, f"business/{business_id}")

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
