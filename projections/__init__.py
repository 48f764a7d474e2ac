"""Read models of the consent ledger, rebuilt from its log at will.

* :class:`ConsentStatusView`: each person's current consent, for audiences and send-time
  checks;
* :class:`AuditLogView`: one row per event, for auditors' time-range and category queries.

:func:`view_checks` compares views with the log, for ``ConsentLedger.verify(views=...)``.

Views live in an SQLite file or a PostgreSQL schema (the ledger's own, or another: a
service may replay a ledger's log into its own database). :func:`catch_up` applies what
the log holds beyond a view's position, in batches, each one transaction with the new
position; :func:`follow` keeps views caught up as events arrive.
"""

from typing import TYPE_CHECKING, Any

from consent_ledger.projections.audit_log import AuditLogView, AuditQuery, AuditRow
from consent_ledger.projections.consent_status import ConsentStatusView
from consent_ledger.projections.runner import (
    VIEWS,
    catch_up,
    catch_up_all,
    follow,
    open_views,
    rebuild,
)
from consent_ledger.projections.views import ConcurrentCatchUpError, View, ViewError

from consent_ledger.storage.view_database import ViewDatabase, open_view_database

if TYPE_CHECKING:
    from consent_ledger.projections.checks import built_views, view_checks

__all__ = [
    "VIEWS",
    "AuditLogView",
    "AuditQuery",
    "AuditRow",
    "ConcurrentCatchUpError",
    "ConsentStatusView",
    "View",
    "ViewDatabase",
    "ViewError",
    "built_views",
    "catch_up",
    "catch_up_all",
    "follow",
    "open_view_database",
    "open_views",
    "rebuild",
    "view_checks",
]


def __getattr__(name: str) -> Any:
    """The view checks, imported on first use: they load the event models, a check does not."""
    if name in {"built_views", "view_checks"}:
        from consent_ledger.projections import checks  # noqa: PLC0415

        return getattr(checks, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
