"""The catalogue: businesses, their categories and notices, and their templates' categories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NotRequired, TypedDict

from eventsourcing.persistence import IntegrityError

from consent_ledger.exceptions import (
    BusinessExistsError,
    BusinessNotFoundError,
    InvalidInputError,
    NoticeNotFoundError,
)
from consent_ledger.model.business import Business
from consent_ledger.model.commands import ChangeCategories, ConfirmOptIn, OptIn, OptOut
from consent_ledger.model.notice import Notice
from consent_ledger.model.taxonomy import CATEGORIES, TemplateCategory
from consent_ledger.model.template import Template

if TYPE_CHECKING:
    from collections.abc import Callable

    from consent_ledger.application.books import Books
    from consent_ledger.model.commands import (
        ConsentCommand,
        DefineCategory,
        PublishNotice,
        RegisterBusiness,
    )
    from consent_ledger.model.notice import NoticeVersion
    from consent_ledger.model.taxonomy import Category, Channel


@dataclass(frozen=True)
class BusinessInfo:
    """A registered business."""

    business_id: str
    display_name: str
    notice_ids: tuple[str, ...]


class CategoryChange(TypedDict, total=False):
    """The facts of a change of a template's category besides the category itself."""

    effective_at: datetime | None
    source: str
    previous: TemplateCategory | str | None
    platform_template_id: str | None
    signal: str | None


class AnnouncedChange(TypedDict):
    """The facts of a change of category WhatsApp announced, besides the category."""

    previous: TemplateCategory | str | None
    effective_at: datetime | None
    platform_template_id: NotRequired[str | None]
    signal: NotRequired[str | None]


class Catalogue:
    """Registers businesses, publishes their notices and keeps their templates' categories."""

    def __init__(self, books: Books) -> None:
        """Work on ``books``."""
        self._books = books

    # Businesses.

    def register_business(self, command: RegisterBusiness) -> BusinessInfo:
        """Register a business.

        Raises:
            BusinessExistsError: the id is taken.
            LedgerBusyError: the database stayed locked by other writers.
        """

        def register() -> Business:  # a new aggregate each time: a failed save spent its events
            business = Business.register(command.business_id, command.display_name)
            self._books.save(business)
            return business

        try:
            business = self._books.until_saved(
                f"business {command.business_id!r}", register, conflicts=False
            )
        except IntegrityError:
            msg = f"business {command.business_id!r} is registered already"
            raise BusinessExistsError(msg) from None
        return _business_info(business)

    def get_business(self, business_id: str) -> BusinessInfo:
        """A registered business.

        Raises:
            BusinessNotFoundError: none is registered under ``business_id``.
        """
        return _business_info(self.business(business_id))

    def business(self, business_id: str) -> Business:
        """The business aggregate.

        Raises:
            BusinessNotFoundError: none is registered under ``business_id``.
        """
        business = self._books.find(Business, Business.create_id(business_id))
        if business is None:
            msg = (
                f"no business {business_id!r} in this ledger; register it with: "
                f"consent-ledger business register {business_id} --name NAME"
            )
            raise BusinessNotFoundError(msg)
        return business

    # Categories.

    def define_category(self, command: DefineCategory) -> Category:
        """Define a category of a business's own.

        Raises:
            BusinessNotFoundError: the business is not registered.
            CategoryExistsError: the name is built in, or the business defined it already.
        """

        def define() -> Category:
            business = self.business(command.business_id)
            category = business.define_category(
                command.name,
                description=command.description,
                template_category=command.template_category,
                channels=command.channels,
            )
            self._books.save(business)
            return category

        return self._books.until_saved(f"category {command.name!r}", define)

    def retire_category(self, business_id: str, name: str) -> Category:
        """Retire a category the business defined: no new opt-ins or notices under it.

        Raises:
            BusinessNotFoundError: the business is not registered.
            UnknownCategoryError: the business has no category of that name.
            CategoryRuleError: it is built in.
            CategoryRetiredError: it was retired already.
        """

        def retire() -> Category:
            business = self.business(business_id)
            category = business.retire_category(name)
            self._books.save(business)
            return category

        return self._books.until_saved(f"category {name!r}", retire)

    def list_categories(self, business_id: str) -> list[Category]:
        """The business's categories: the built-in ones, then its own in the order defined.

        Raises:
            BusinessNotFoundError: the business is not registered.
        """
        return self.business(business_id).categories

    def category(self, business_id: str, name: str) -> Category:
        """One of the business's categories, retired or not.

        Raises:
            BusinessNotFoundError: the business is not registered.
            UnknownCategoryError: the business has no category of that name.
        """
        return CATEGORIES.get(name) or self.business(business_id).category(name)

    def check_categories_of(self, command: ConsentCommand) -> None:
        """Raise unless ``command`` names only categories of its business that it may.

        A grant (an opt-in, a change's grants) needs categories not retired, for its
        channel; a withdrawal or a confirmation needs ones that exist or existed: a person
        may always withdraw. Built-in categories pass without reading the business.

        Raises:
            UnknownCategoryError: a category is none of the business's (named in the error).
            CategoryRetiredError: a category granted was retired.
            CategoryRuleError: a category granted is for other channels.
        """
        granted, named, channel = _categories_named(command)
        if all(name in CATEGORIES for name in (*granted, *named)):
            return  # every business has them, on every channel, and none is ever retired
        business = self.business(command.business_id)
        business.check_known(named)
        if channel is not None:
            business.check_grantable(granted, channel, "opt-ins")

    # Notices.

    def publish_notice(self, command: PublishNotice) -> NoticeVersion:
        """Publish the next version of a notice (version 1 creates it).

        Raises:
            BusinessNotFoundError: the business is not registered.
            NoticeRuleError: the text does not name the business.
        """

        def publish() -> NoticeVersion:
            business = self.business(command.business_id)
            notice = self._books.find(
                Notice, Notice.create_id(command.business_id, command.notice_id)
            )
            if notice is None:
                notice = Notice.register(command.business_id, command.notice_id)
                business.add_notice(command.notice_id)
            version = notice.publish(
                business,
                language=command.language,
                channel=command.channel,
                categories=command.categories,
                text=command.text,
                policy_url=command.policy_url,
            )
            self._books.save(notice, business)
            return version

        return self._books.until_saved(f"notice {command.notice_id!r}", publish)

    def get_notice(
        self, business_id: str, notice_id: str, version: int | None = None
    ) -> NoticeVersion:
        """A published notice version, or its latest version when ``version`` is None.

        Raises:
            NoticeNotFoundError: the notice or the version does not exist.
        """
        return self._notice(business_id, notice_id).get_version(version)

    def list_notices(self, business_id: str) -> list[NoticeVersion]:
        """The latest version of each notice of a business, in the order first published.

        Raises:
            BusinessNotFoundError: the business is not registered.
        """
        business = self.business(business_id)
        return [self.get_notice(business_id, notice_id) for notice_id in business.notice_ids]

    def list_notice_versions(self, business_id: str, notice_id: str) -> list[NoticeVersion]:
        """Every version of a notice, oldest first.

        Raises:
            NoticeNotFoundError: the notice does not exist.
        """
        return list(self._notice(business_id, notice_id).versions)

    def _notice(self, business_id: str, notice_id: str) -> Notice:
        notice = self._books.find(Notice, Notice.create_id(business_id, notice_id))
        if notice is None:
            msg = f"business {business_id!r} has published no notice {notice_id!r}"
            raise NoticeNotFoundError(msg)
        return notice

    # Templates and their categories.

    def set_template_category(  # noqa: PLR0913 (a change of category has this many facts)
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        *,
        effective_at: datetime | None = None,
        source: str = "operator",
        previous: TemplateCategory | str | None = None,
        platform_template_id: str | None = None,
        signal: str | None = None,
    ) -> bool:
        """Record that a template is in ``category`` from ``effective_at`` (default now) on.

        ``signal``: the webhook item this comes from; recorded at most once. Returns
        False when that signal was recorded before.
        """

        def change(template: Template) -> None:
            template.change_category(
                TemplateCategory(category),
                effective_at=effective_at or datetime.now(UTC),
                source=source,
                previous=TemplateCategory(previous) if previous else None,
                platform_template_id=platform_template_id,
            )

        return self._change_template(business_id, name, language, change, signal)

    def announce_template_category(  # noqa: PLR0913 (an announcement has this many facts)
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        *,
        previous: TemplateCategory | str | None,
        effective_at: datetime | None,
        platform_template_id: str | None = None,
        signal: str | None = None,
    ) -> bool:
        """Record a change of category WhatsApp announced (not in force until done)."""

        def change(template: Template) -> None:
            template.announce_category(
                TemplateCategory(category),
                previous=TemplateCategory(previous) if previous else None,
                effective_at=effective_at,
                platform_template_id=platform_template_id,
            )

        return self._change_template(business_id, name, language, change, signal)

    def template_category(
        self, business_id: str, name: str, language: str, *, at: datetime | None = None
    ) -> TemplateCategory | None:
        """The category a template is in at ``at`` (default now); None if never recorded."""
        template = self._books.find(Template, Template.create_id(business_id, name, language))
        return None if template is None else template.category_at(at or datetime.now(UTC))

    def template_changes(
        self, business_id: str, name: str, language: str
    ) -> list[Template.CategoryChanged]:
        """Every change of a template's category, in the order recorded."""
        template = self._books.find(Template, Template.create_id(business_id, name, language))
        return [] if template is None else list(template.changes)

    def category_of_send(
        self, business_id: str, template: tuple[str, str], at: datetime | None
    ) -> TemplateCategory:
        """The category of the template ``(name, language)`` in force at a send.

        Raises:
            InvalidInputError: no category was ever recorded for the template by then.
        """
        name, language = template
        category = self.template_category(business_id, name, language, at=at)
        if category is None:
            msg = (
                f"no category is recorded for template {name} ({language}) at that time: "
                "record it with consent-ledger template set, or ingest its category updates"
            )
            raise InvalidInputError(msg)
        return category

    def _change_template(
        self,
        business_id: str,
        name: str,
        language: str,
        change: Callable[[Template], None],
        signal: str | None,
    ) -> bool:
        self.business(business_id)
        key = self._books.signal_key(signal) if signal is not None else None

        def attempt() -> bool:
            if key is not None and self._books.recorder.is_ingested(key):
                return False
            found = self._books.find(Template, Template.create_id(business_id, name, language))
            template = found or Template.register(business_id, name, language)
            change(template)
            self._books.save(template, signals=[key] if key is not None else [])
            return True

        return self._books.until_saved(f"template {name} ({language})", attempt)


def _categories_named(
    command: ConsentCommand,
) -> tuple[tuple[str, ...], tuple[str, ...], Channel | None]:
    """The categories ``command`` grants, those it names otherwise, and the grants' channel."""
    if isinstance(command, OptIn):
        return command.categories, (), command.channel
    if isinstance(command, ChangeCategories):
        return command.grant, command.withdraw, command.channel
    if isinstance(command, OptOut | ConfirmOptIn):
        return (), command.categories or (), None
    return (), (), None


def _business_info(business: Business) -> BusinessInfo:
    return BusinessInfo(
        business_id=business.business_id,
        display_name=business.display_name,
        notice_ids=tuple(business.notice_ids),
    )
