"""The vocabulary of consent: channels, message categories, collection methods, legal bases.

Categories are what people consent to, one by one (the seed asks for specific consent per
category). Each category names the WhatsApp template category its messages are sent under,
so that a send-time check can tell marketing from utility. The built-in categories
(:data:`CATEGORIES`) are a starter set every business has; a business defines its own
beside them (``Business.CategoryDefined``). Neither kind is ever renamed or removed (a
business's own may be retired), so every stored event keeps its meaning.

Which categories exist depends on the business, so events and commands check only that a
name is well formed (:func:`check_categories`); the application checks that it is one of
the business's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import TYPE_CHECKING

from consent_ledger.exceptions import (
    CategoryRetiredError,
    CategoryRuleError,
    InvalidInputError,
    UnknownCategoryError,
)
from consent_ledger.model.plain import utc_seconds

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

TAXONOMY_VERSION = 1


class Channel(StrEnum):
    """A messaging channel consent is given for; consent on one never implies another."""

    WHATSAPP = "whatsapp"
    SMS = "sms"
    RCS = "rcs"
    EMAIL = "email"


class TemplateCategory(StrEnum):
    """WhatsApp's template categories since April 2023."""

    MARKETING = "MARKETING"
    UTILITY = "UTILITY"
    AUTHENTICATION = "AUTHENTICATION"


class Method(StrEnum):
    """How and where a consent decision reached the business.

    ``platform`` is a decision the messaging platform reported (WhatsApp's marketing stop).
    """

    WEB_FORM = "web-form"
    WHATSAPP_THREAD = "whatsapp-thread"
    SMS_KEYWORD = "sms-keyword"
    EMAIL_LINK = "email-link"
    IVR = "ivr"
    CALL_CENTRE = "call-centre"
    IN_PERSON = "in-person"
    PAPER = "paper"
    API = "api"
    IMPORT = "import"
    PLATFORM = "platform"


class LegalBasis(StrEnum):
    """The lawful ground a grant rests on (GDPR Art. 6, ePrivacy Art. 13, TCPA)."""

    CONSENT = "consent"
    EXPLICIT_CONSENT = "explicit-consent"
    SOFT_OPT_IN = "soft-opt-in"
    PRIOR_EXPRESS_WRITTEN_CONSENT = "prior-express-written-consent"
    PRIOR_EXPRESS_CONSENT = "prior-express-consent"
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate-interest"


@dataclass(frozen=True)
class Category:
    """A kind of message a person may consent to receive.

    Built in (every business has it), or defined by one business (``defined_at``), which
    may retire it (``retired_at``): no new opt-ins or notices under it from then on, while
    consent already given to it is still read, checked and withdrawn.
    """

    name: str
    description: str
    template_category: TemplateCategory
    channels: tuple[Channel, ...] = tuple(Channel)
    """The channels its messages go out on; notices and opt-ins on others are refused."""
    built_in: bool = True
    defined_at: datetime | None = None
    retired_at: datetime | None = None

    @property
    def retired(self) -> bool:
        """Whether the business retired it."""
        return self.retired_at is not None

    def check_grantable(self, channel: Channel, what: str) -> None:
        """Raise unless new ``what`` (``opt-ins``, ``notices``) may name it on ``channel``.

        Raises:
            CategoryRetiredError: it was retired.
            CategoryRuleError: its messages do not go out on ``channel``.
        """
        if self.retired_at is not None:
            when = utc_seconds(self.retired_at)
            msg = f"category {self.name!r} was retired on {when}: no new {what}"
            raise CategoryRetiredError(msg)
        if channel not in self.channels:
            channels = ", ".join(self.channels)
            msg = f"category {self.name!r} is for {channels} messages, not {channel}"
            raise CategoryRuleError(msg)


_CATEGORIES = (
    Category("order-updates", "Order status, shipping and delivery", TemplateCategory.UTILITY),
    Category("account-alerts", "Account, payment and security alerts", TemplateCategory.UTILITY),
    Category(
        "appointment-reminders",
        "Appointment and reservation reminders",
        TemplateCategory.UTILITY,
    ),
    Category("renewal-reminders", "Subscription and renewal reminders", TemplateCategory.UTILITY),
    Category("customer-care", "Follow-ups on support requests", TemplateCategory.UTILITY),
    Category("one-time-passwords", "Verification codes", TemplateCategory.AUTHENTICATION),
    Category("back-in-stock", "Back-in-stock notices", TemplateCategory.MARKETING),
    Category("abandoned-cart", "Abandoned-cart reminders", TemplateCategory.MARKETING),
    Category("offers", "Offers and promotions", TemplateCategory.MARKETING),
    Category("recommendations", "Personalised recommendations", TemplateCategory.MARKETING),
    Category("newsletters", "News and announcements", TemplateCategory.MARKETING),
)

CATEGORIES: dict[str, Category] = {c.name: c for c in _CATEGORIES}


_CATEGORY_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def check_category_name(name: str) -> str:
    """Return ``name`` if it can name a category (built in or a business's own).

    Raises:
        InvalidInputError: it cannot.
    """
    if not _CATEGORY_NAME.fullmatch(name):
        msg = (
            f"{name!r} is not a category name: use 1 to 64 lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (e.g. loyalty-points)"
        )
        raise InvalidInputError(msg)
    return name


def check_categories(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Return the names sorted and without duplicates, or raise if one is malformed.

    Whether each is one of a business's categories is for the application to check: this
    runs on every event read, and an event may name a category its business defined.

    Raises:
        InvalidInputError: a name cannot name a category.
    """
    names = tuple(names)
    # The common case, on every event read: built-in names, already sorted and unique.
    if all(a < b for a, b in pairwise(names)) and all(n in CATEGORIES for n in names):
        return names
    for name in names:
        if name not in CATEGORIES:
            check_category_name(name)
    return tuple(sorted(set(names)))


def unknown_category(
    name: str,
    names: Iterable[str],
    retired: Iterable[str] = (),
    whose: str = "this business's categories",
) -> UnknownCategoryError:
    """The error for ``name``, naming the categories there are (and those retired)."""
    listed = ", ".join(names)
    retired = list(retired)
    if retired:
        listed += f" (retired: {', '.join(retired)})"
    msg = f"unknown category {name!r}; {whose}: {listed}"
    return UnknownCategoryError(msg)


def unknown_among(name: str, categories: Iterable[Category]) -> UnknownCategoryError:
    """The error for ``name``, naming a business's ``categories`` (those retired apart)."""
    known = list(categories)
    active = [c.name for c in known if not c.retired]
    return unknown_category(name, active, [c.name for c in known if c.retired])
