"""consent-ledger: an event-sourced, tamper-evident consent ledger for business messaging."""

from consent_ledger.exceptions import (
    BusinessExistsError,
    BusinessNotFoundError,
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
from consent_ledger.ledger import BusinessInfo, ConsentLedger, KeyLocation, Recorded
from consent_ledger.model.business import Business
from consent_ledger.model.commands import (
    ChangeCategories,
    ConfirmOptIn,
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
from consent_ledger.model.taxonomy import CATEGORIES, Channel, LegalBasis, Method, TemplateCategory
from consent_ledger.privacy.keys import MasterKey
from consent_ledger.storage.log import EventLog

__all__ = [
    "CATEGORIES",
    "Business",
    "BusinessExistsError",
    "BusinessInfo",
    "BusinessNotFoundError",
    "ChangeCategories",
    "Channel",
    "ConcurrentUpdateError",
    "ConfirmOptIn",
    "ConsentLedger",
    "ConsentLedgerError",
    "ConsentRecord",
    "ConsentRuleError",
    "ConsentState",
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
