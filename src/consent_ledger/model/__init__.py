"""The write model: aggregates and their events, commands, values, the status fold.

Pure rules: nothing here does I/O. Importing the package defines every aggregate, so the
pinned topics of stored events resolve whichever module a reader imported first.
"""

from consent_ledger.model.business import Business
from consent_ledger.model.consent_record import ConsentRecord
from consent_ledger.model.notice import Notice, NoticeVersion
from consent_ledger.model.template import Template

__all__ = ["Business", "ConsentRecord", "Notice", "NoticeVersion", "Template"]
