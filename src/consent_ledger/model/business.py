"""A business that sends messages, publishes opt-in notices and defines its own categories."""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from consent_ledger.exceptions import CategoryExistsError, CategoryRetiredError, CategoryRuleError
from consent_ledger.model.aggregate import ID_NAMESPACE, Aggregate
from consent_ledger.model.plain import utc_seconds
from consent_ledger.model.taxonomy import (
    CATEGORIES,
    Category,
    Channel,
    TemplateCategory,
    unknown_among,
)
from consent_ledger.model.values import (  # noqa: TC001 (pydantic reads them at runtime)
    CategoryName,
    Slug,
)

if TYPE_CHECKING:
    from collections.abc import Iterable


class Business(Aggregate):
    """A business that sends messages, publishes opt-in notices and defines categories.

    Its categories are the built-in ones (:data:`~consent_ledger.model.taxonomy.CATEGORIES`)
    and those it defined; one it defined may be retired, never deleted or renamed.
    """

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

    class CategoryDefined(Event):
        """The business defined a category of its own, beside the built-in ones."""

        TOPIC: ClassVar[str] = "consent-ledger:Business.CategoryDefined"
        name: CategoryName
        description: str = Field(min_length=1, max_length=200)
        template_category: TemplateCategory
        channels: tuple[Channel, ...] = Field(min_length=1)

        def apply(self, aggregate: Business) -> None:
            """Add the category."""
            aggregate.own_categories[self.name] = Category(
                self.name,
                self.description,
                self.template_category,
                channels=self.channels,
                built_in=False,
                defined_at=self.timestamp,
            )

    class CategoryRetired(Event):
        """The business retired one of its categories: no new opt-ins or notices under it."""

        TOPIC: ClassVar[str] = "consent-ledger:Business.CategoryRetired"
        name: CategoryName

        def apply(self, aggregate: Business) -> None:
            """Mark the category retired; it is kept, so events naming it keep their meaning."""
            category = aggregate.own_categories[self.name]
            aggregate.own_categories[self.name] = dataclasses.replace(
                category, retired_at=self.timestamp
            )

    def __init__(self, business_id: str, display_name: str) -> None:
        """Initial state, from the Registered event."""
        self.business_id = business_id
        self.display_name = display_name
        self.notice_ids: list[str] = []
        self.own_categories: dict[str, Category] = {}

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

    # Categories.

    @property
    def categories(self) -> list[Category]:
        """Every category of the business: the built-in ones, then its own as defined."""
        return [*CATEGORIES.values(), *self.own_categories.values()]

    def category(self, name: str) -> Category:
        """The category of the business named ``name``, retired or not.

        Raises:
            UnknownCategoryError: it has none of that name.
        """
        found = CATEGORIES.get(name) or self.own_categories.get(name)
        if found is None:
            raise unknown_among(name, self.categories)
        return found

    def check_known(self, names: Iterable[str]) -> None:
        """Raise unless each name is one of the business's categories (retired ones count).

        What a withdrawal checks: a person may always withdraw from a category that
        exists or existed.

        Raises:
            UnknownCategoryError: names the business's categories.
        """
        for name in names:
            self.category(name)

    def check_grantable(self, names: Iterable[str], channel: Channel, what: str) -> None:
        """Raise unless new ``what`` (``opt-ins``, ``notices``) may name each on ``channel``.

        Raises:
            UnknownCategoryError: a name is none of the business's categories.
            CategoryRetiredError: a category was retired.
            CategoryRuleError: a category's messages do not go out on ``channel``.
        """
        for name in names:
            self.category(name).check_grantable(channel, what)

    def define_category(
        self,
        name: str,
        *,
        description: str,
        template_category: TemplateCategory,
        channels: Iterable[Channel] = tuple(Channel),
    ) -> Category:
        """Define a category of the business's own.

        Raises:
            CategoryExistsError: the name is built in, or the business defined it already
                (a category is never redefined: events that name it keep their meaning).
        """
        existing = CATEGORIES.get(name) or self.own_categories.get(name)
        if existing is not None:
            raise CategoryExistsError(self._taken(existing))
        chosen = set(channels)
        self.trigger_event(
            self.CategoryDefined,
            name=name,
            description=description.strip(),
            template_category=template_category,
            channels=tuple(c for c in Channel if c in chosen),  # in a stable order
        )
        return self.own_categories[name]

    def retire_category(self, name: str) -> Category:
        """Retire a category of the business's own: no new opt-ins or notices under it.

        Raises:
            UnknownCategoryError: the business has no category of that name.
            CategoryRuleError: it is built in (every business keeps those).
            CategoryRetiredError: it was retired already.
        """
        category = self.category(name)
        if category.built_in:
            msg = (
                f"{name!r} is a built-in category: every business keeps it, so it cannot be "
                "retired (a business retires only categories it defined)"
            )
            raise CategoryRuleError(msg)
        if category.retired_at is not None:
            msg = f"category {name!r} was retired on {utc_seconds(category.retired_at)} already"
            raise CategoryRetiredError(msg)
        self.trigger_event(self.CategoryRetired, name=name)
        return self.own_categories[name]

    def _taken(self, existing: Category) -> str:
        """Why a category cannot be defined under the name of ``existing``."""
        if existing.built_in:
            return (
                f"{existing.name!r} is a built-in category: every business has it already; "
                "give yours another name"
            )
        assert existing.defined_at is not None  # noqa: S101 (a business's own has its date)
        retired = (
            f", and retired it on {utc_seconds(existing.retired_at)}"
            if existing.retired_at is not None
            else ""
        )
        return (
            f"business {self.business_id!r} defined category {existing.name!r} on "
            f"{utc_seconds(existing.defined_at)}{retired}: a category is never redefined or "
            "renamed (stored events keep their meaning); define a new one under another name"
        )
