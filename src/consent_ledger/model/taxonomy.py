"""The vocabulary of consent: channels, message categories, collection methods, legal bases.

Categories are what people consent to, one by one (the seed asks for specific consent per
category). Each category names the WhatsApp template category its messages are sent under,
so that a send-time check can tell marketing from utility. The taxonomy is versioned: a
category is never renamed or removed, only added, so every stored event keeps its meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from consent_ledger.exceptions import UnknownCategoryError

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
    """A kind of message a person may consent to receive."""

    name: str
    description: str
    template_category: TemplateCategory


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


def check_categories(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Return the names sorted and without duplicates, or raise if one is unknown.

    Raises:
        UnknownCategoryError: a name is not in the taxonomy.
    """
    names = tuple(names)
    # The common case, on every event read: known names, already sorted and unique.
    if all(a < b for a, b in pairwise(names)) and all(n in CATEGORIES for n in names):
        return names
    unknown = [n for n in names if n not in CATEGORIES]
    if unknown:
        known = ", ".join(CATEGORIES)
        msg = f"unknown category {unknown[0]!r}; known categories: {known}"
        raise UnknownCategoryError(msg)
    return tuple(sorted(set(names)))
