"""The errors a consent ledger raises: one tree, one base class.

Every error a user can cause is a :class:`ConsentLedgerError`; its message is one
line that names what was wrong and, where there is one, the next step. Anything
else that escapes the library is a bug.
"""

from __future__ import annotations


class ConsentLedgerError(Exception):
    """Base class of every error the ledger reports to its users."""


# Opening and creating a ledger.


class LedgerNotFoundError(ConsentLedgerError):
    """No ledger exists where one was expected."""


class NotALedgerError(ConsentLedgerError):
    """The database exists but does not hold a consent ledger."""


class LedgerExistsError(ConsentLedgerError):
    """A ledger (or its key file) already exists where a new one was to be created."""


class StoreUnavailableError(ConsentLedgerError):
    """The database server could not be reached."""


class ViewDatabaseError(ConsentLedgerError):
    """The database the views live in is not there, or cannot be opened."""


class KeyMaterialError(ConsentLedgerError):
    """The ledger's master key is missing, unreadable, or not this ledger's key."""


class MissingKeyError(KeyMaterialError):
    """No master key was given or found for the ledger."""


class WrongKeyError(KeyMaterialError):
    """The master key given does not open this ledger."""


# Input the ledger refuses.


class InvalidInputError(ConsentLedgerError):
    """A command or query was given a value the ledger cannot accept."""


class InvalidIdentifierError(InvalidInputError):
    """An identifier (phone number, wa_id, BSUID, e-mail) could not be understood."""


class UnknownCategoryError(InvalidInputError):
    """A category is neither built in nor one the business defined."""


# Domain rules.


class ConsentRuleError(ConsentLedgerError):
    """A command broke one of the ledger's consent rules and was not recorded."""


class NoticeRuleError(ConsentRuleError):
    """An opt-in named a notice that does not cover it (business, channel or categories)."""


class CategoryRuleError(ConsentRuleError):
    """A category cannot be used so: its messages go on other channels, or it is built in."""


class CategoryRetiredError(CategoryRuleError):
    """A category the business retired was named by a new opt-in or notice."""


class CategoryExistsError(ConsentLedgerError):
    """A category of that name exists already (built in, or defined by the business)."""


class BusinessNotFoundError(ConsentLedgerError):
    """No business is registered under the given id."""


class BusinessExistsError(ConsentLedgerError):
    """A business is already registered under the given id."""


class NoticeNotFoundError(ConsentLedgerError):
    """No notice (or no such version of it) has been published."""


class SubjectNotFoundError(ConsentLedgerError):
    """The ledger holds no consent record for the given identifier."""


class ConcurrentUpdateError(ConsentLedgerError):
    """Other writers kept changing the same consent record; nothing was recorded."""


class LedgerBusyError(ConcurrentUpdateError):
    """The ledger's database stayed locked by other writers; nothing was recorded."""


class IdentityConflictError(ConsentLedgerError):
    """Identifiers said to be one person's already find different people."""
