"""Message templates and the WhatsApp category each is in over time."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, ClassVar

from pydantic import AwareDatetime, Field

from consent_ledger.model.aggregate import ID_NAMESPACE, Aggregate
from consent_ledger.model.taxonomy import TemplateCategory  # noqa: TC001 (read by pydantic)
from consent_ledger.model.values import Slug  # noqa: TC001 (pydantic reads it at runtime)

if TYPE_CHECKING:
    from datetime import datetime


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
        return uuid.uuid5(ID_NAMESPACE, f"template/{business_id}/{name}/{language}")

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
