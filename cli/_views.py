"""Opening views for a command, caught up first so that what was just recorded is read."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, TypeVar

import click
from consent_ledger.projections import View, catch_up, open_view_database, open_views

if TYPE_CHECKING:
    from consent_ledger.cli._options import F

    from consent_ledger.storage.log import EventLog

V = TypeVar("V", bound=View)
VIEW_DB_ENV = "CONSENT_LEDGER_VIEW_DB"


def view_db_option(command: F) -> F:
    """``--view-db``: where the views live (default: the ledger's own database)."""
    return click.option(
        "--view-db",
        envvar=VIEW_DB_ENV,
        help=f"Where the views live: SQLite path or postgresql:// URL [env: {VIEW_DB_ENV}; "
        "default: the ledger's database].",
    )(command)


def caught_up(log: EventLog, view_db: str | None, db: str, view_class: type[V]) -> V:
    """The view of ``view_class`` in ``view_db`` (default ``db``), caught up with ``log``."""
    ctx = click.get_current_context()
    # A --view-db that is not there is a typo or a view never built: say so, make nothing.
    opened = open_view_database(view_db or db, create=view_db is None)
    database = ctx.with_resource(contextlib.closing(opened))
    [view] = open_views(database, [view_class.name])
    assert isinstance(view, view_class)  # noqa: S101 (open_views made it from its name)
    catch_up(log, view)
    return view
