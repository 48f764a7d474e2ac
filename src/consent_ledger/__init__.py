"""consent-ledger: an event-sourced, tamper-evident consent ledger for business messaging.

Each public name is imported from its module when it is first used (PEP 562), so that
``import consent_ledger``, and any ``consent_ledger.*`` module (which imports this package
first), loads only what it uses: a send-time check need not build every event model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consent_ledger.application.catalogue import BusinessInfo
    from consent_ledger.application.recording import Recorded
    from consent_ledger.exceptions import (
        BusinessExistsError,
        BusinessNotFoundError,
        CategoryExistsError,
        CategoryRetiredError,
        CategoryRuleError,
        ConcurrentUpdateError,
        ConsentLedgerError,
        ConsentRuleError,
        InvalidIdentifierError,
        InvalidInputError,
        KeyMaterialError,
        LedgerBusyError,
        LedgerExistsError,
        LedgerNotFoundError,
        MissingKeyError,
        NotALedgerError,
        NoticeNotFoundError,
        NoticeRuleError,
        StoreUnavailableError,
        SubjectNotFoundError,
        UnknownCategoryError,
        ViewDatabaseError,
        WrongKeyError,
    )
    from consent_ledger.ledger import ConsentLedger, KeyLocation
    from consent_ledger.model.business import Business
    from consent_ledger.model.commands import (
        ChangeCategories,
        ConfirmOptIn,
        DefineCategory,
        Evidence,
        OptIn,
        OptOut,
        PublishNotice,
        RecordPlatformPreference,
        RegisterBusiness,
    )
    from consent_ledger.model.consent_record import ConsentRecord
    from consent_ledger.model.history import HistoryEntry, SubjectHistory, SubjectStatus
    from consent_ledger.model.identifiers import Identifier, IdentifierKind
    from consent_ledger.model.notice import Notice, NoticeVersion
    from consent_ledger.model.status import ConsentState, PlatformState, State
    from consent_ledger.model.taxonomy import (
        CATEGORIES,
        Category,
        Channel,
        LegalBasis,
        Method,
        TemplateCategory,
    )
    from consent_ledger.privacy.keys import MasterKey
    from consent_ledger.storage.log import EventLog

_EXPORTS: dict[str, tuple[str, ...]] = {
    "consent_ledger.exceptions": (
        "BusinessExistsError",
        "BusinessNotFoundError",
        "CategoryExistsError",
        "CategoryRetiredError",
        "CategoryRuleError",
        "ConcurrentUpdateError",
        "ConsentLedgerError",
        "ConsentRuleError",
        "InvalidIdentifierError",
        "InvalidInputError",
        "KeyMaterialError",
        "LedgerBusyError",
        "LedgerExistsError",
        "LedgerNotFoundError",
        "MissingKeyError",
        "NotALedgerError",
        "NoticeNotFoundError",
        "NoticeRuleError",
        "StoreUnavailableError",
        "SubjectNotFoundError",
        "UnknownCategoryError",
        "ViewDatabaseError",
        "WrongKeyError",
    ),
    "consent_ledger.application.catalogue": ("BusinessInfo",),
    "consent_ledger.application.recording": ("Recorded",),
    "consent_ledger.ledger": ("ConsentLedger", "KeyLocation"),
    "consent_ledger.model.business": ("Business",),
    "consent_ledger.model.commands": (
        "ChangeCategories",
        "ConfirmOptIn",
        "DefineCategory",
        "Evidence",
        "OptIn",
        "OptOut",
        "PublishNotice",
        "RecordPlatformPreference",
        "RegisterBusiness",
    ),
    "consent_ledger.model.consent_record": ("ConsentRecord",),
    "consent_ledger.model.history": (
        "HistoryEntry",
        "SubjectHistory",
        "SubjectStatus",
    ),
    "consent_ledger.model.identifiers": (
        "Identifier",
        "IdentifierKind",
    ),
    "consent_ledger.model.notice": (
        "Notice",
        "NoticeVersion",
    ),
    "consent_ledger.model.status": (
        "ConsentState",
        "PlatformState",
        "State",
    ),
    "consent_ledger.model.taxonomy": (
        "CATEGORIES",
        "Category",
        "Channel",
        "LegalBasis",
        "Method",
        "TemplateCategory",
    ),
    "consent_ledger.privacy.keys": ("MasterKey",),
    "consent_ledger.storage.log": ("EventLog",),
}
"""Where each public name is defined (the imports above, for type checkers, say the same)."""

_HOMES = {name: module for module, names in _EXPORTS.items() for name in names}


if not TYPE_CHECKING:  # type checkers read the imports above: a misspelt name stays an error

    def __getattr__(name: str) -> object:
        """A public name, imported from its module on first use (PEP 562).

        Raises:
            AttributeError: the package has no such name.
        """
        home = _HOMES.get(name)
        if home is None:
            msg = f"module {__name__!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value  # the next use is an ordinary global
        return value


def __dir__() -> list[str]:
    """The public names, loaded or not."""
    return sorted({*globals(), *__all__})


__all__ = [
    "CATEGORIES",
    "Business",
    "BusinessExistsError",
    "BusinessInfo",
    "BusinessNotFoundError",
    "Category",
    "CategoryExistsError",
    "CategoryRetiredError",
    "CategoryRuleError",
    "ChangeCategories",
    "Channel",
    "ConcurrentUpdateError",
    "ConfirmOptIn",
    "ConsentLedger",
    "ConsentLedgerError",
    "ConsentRecord",
    "ConsentRuleError",
    "ConsentState",
    "DefineCategory",
    "EventLog",
    "Evidence",
    "HistoryEntry",
    "Identifier",
    "IdentifierKind",
    "InvalidIdentifierError",
    "InvalidInputError",
    "KeyLocation",
    "KeyMaterialError",
    "LedgerBusyError",
    "LedgerExistsError",
    "LedgerNotFoundError",
    "LegalBasis",
    "MasterKey",
    "Method",
    "MissingKeyError",
    "NotALedgerError",
    "Notice",
    "NoticeNotFoundError",
    "NoticeRuleError",
    "NoticeVersion",
    "OptIn",
    "OptOut",
    "PlatformState",
    "PublishNotice",
    "RecordPlatformPreference",
    "Recorded",
    "RegisterBusiness",
    "State",
    "StoreUnavailableError",
    "SubjectHistory",
    "SubjectNotFoundError",
    "SubjectStatus",
    "TemplateCategory",
    "UnknownCategoryError",
    "ViewDatabaseError",
    "WrongKeyError",
]
