"""The write model: aggregates and their events, commands, values, the status fold.

Pure rules: nothing here does I/O. The aggregates are imported when first used (PEP 562):
the pinned topics of stored events (``consent-ledger:ConsentRecord.OptedIn``) resolve
through this package, registered as the topic prefix ``consent-ledger``, so reading an
event imports the module that defines its class, whichever modules a reader imported.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from eventsourcing.utils import register_topic

if TYPE_CHECKING:
    from consent_ledger.model.business import Business
    from consent_ledger.model.consent_record import ConsentRecord
    from consent_ledger.model.notice import Notice, NoticeVersion
    from consent_ledger.model.template import Template

TOPIC_PREFIX = "consent-ledger"
"""What every pinned topic starts with: ``consent-ledger:<Aggregate>[.<Event>]``."""

_HOMES = {
    "Business": "consent_ledger.model.business",
    "ConsentRecord": "consent_ledger.model.consent_record",
    "Notice": "consent_ledger.model.notice",
    "NoticeVersion": "consent_ledger.model.notice",
    "Template": "consent_ledger.model.template",
}

__all__ = ["Business", "ConsentRecord", "Notice", "NoticeVersion", "Template"]


if not TYPE_CHECKING:  # type checkers read the imports above: a misspelt name stays an error

    def __getattr__(name: str) -> object:
        """An aggregate, imported from its module on first use.

        Raises:
            AttributeError: the package has no such name.
        """
        home = _HOMES.get(name)
        if home is None:
            msg = f"module {__name__!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value
        return value


register_topic(TOPIC_PREFIX, sys.modules[__name__])
