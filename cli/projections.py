"""``projections``: inspect, catch up, rebuild and follow the views."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import TYPE_CHECKING

import click
from consent_ledger.cli._options import F, format_option, ledger_options
from consent_ledger.cli._output import write_csv, write_json, write_table
from consent_ledger.cli._views import view_db_option
from consent_ledger.projections import VIEWS, View, catch_up, follow, open_view_database, open_views
from consent_ledger.projections import rebuild as rebuild_view

from consent_ledger.storage.log import EventLog

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from click._termui_impl import ProgressBar


def views_option(command: F) -> F:
    """``--view NAME``: which views (default: all)."""
    return click.option(
        "--view",
        "names",
        multiple=True,
        type=click.Choice(list(VIEWS)),
        help="A view to act on (repeatable; default: every view).",
    )(command)


@contextlib.contextmanager
def _opened(
    db: str, view_db: str | None, names: tuple[str, ...], *, create: bool = True
) -> Iterator[tuple[EventLog, list[View]]]:
    with EventLog.open(db) as log:
        database = open_view_database(view_db or db, create=create or view_db is None)
        try:
            yield log, open_views(database, names or None)
        finally:
            database.close()


@click.group()
def projections() -> None:
    """Inspect, catch up, rebuild and follow the views (no master key needed).

    Views are read models of the log: consent-status (current consent per person, for
    audiences and checks) and audit-log (one row per event). They may live in the ledger's
    database or elsewhere (--view-db), and can be dropped and rebuilt at any time.
    """


@projections.command("status")
@ledger_options
@view_db_option
@views_option
@format_option()
def status(
    *,
    db: str,
    key_file: Path | None,
    view_db: str | None,
    names: tuple[str, ...],
    output_format: str,
) -> None:
    """Show each view's position against the log's head, and its lag.

    \b
    Example:
        consent-ledger projections status
    """
    del key_file
    with _opened(db, view_db, names, create=False) as (log, views):
        head = log.head()
        rows = [
            {
                "view": view.name,
                "position": view.position(),
                "head": head,
                "lag": head - view.position(),
                "follows": view.follows(),
                "view_db": view.database.description,
            }
            for view in views
        ]
    if output_format == "json":
        write_json(rows)
    elif output_format == "csv":
        write_csv(list(rows[0]), rows)
    else:
        write_table(
            list(rows[0]), [[str(v) if v is not None else "-" for v in r.values()] for r in rows]
        )


@projections.command("catch-up")
@ledger_options
@view_db_option
@views_option
def catch_up_command(
    *, db: str, key_file: Path | None, view_db: str | None, names: tuple[str, ...]
) -> None:
    """Apply the events each view has not seen yet.

    \b
    Example:
        consent-ledger projections catch-up --view-db views.db
    """
    del key_file
    with _opened(db, view_db, names) as (log, views):
        for view in views:
            applied = catch_up(log, view)
            click.echo(f"{view.name}: applied {applied} events, at position {view.position()}")


@projections.command("rebuild")
@ledger_options
@view_db_option
@views_option
def rebuild(*, db: str, key_file: Path | None, view_db: str | None, names: tuple[str, ...]) -> None:
    """Drop the views' rows and replay the whole log into them (progress on stderr).

    \b
    Example:
        consent-ledger projections rebuild --view consent-status
    """
    del key_file
    with _opened(db, view_db, names) as (log, views):
        head = log.head()
        for view in views:
            bar: ProgressBar[int]
            with click.progressbar(
                length=head, label=f"rebuilding {view.name}", file=sys.stderr
            ) as bar:

                def advance(_: View, count: int, bar: ProgressBar[int] = bar) -> None:
                    bar.update(count)

                applied = rebuild_view(log, view, progress=advance)
            click.echo(f"{view.name}: rebuilt from {applied} events, at position {view.position()}")


@projections.command("follow")
@ledger_options
@view_db_option
@views_option
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between looks at the log (PostgreSQL also wakes on each commit).",
)
def follow_command(
    *,
    db: str,
    key_file: Path | None,
    view_db: str | None,
    names: tuple[str, ...],
    poll_interval: float,
) -> None:
    """Keep the views caught up as events arrive, until Ctrl-C (or SIGTERM).

    On PostgreSQL the views move as soon as a writer commits (LISTEN/NOTIFY); on SQLite
    they are polled. Progress goes to stderr.

    \b
    Example:
        consent-ledger projections follow --db postgresql://ledger@db/consent --view-db views.db
    """
    del key_file
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with _opened(db, view_db, names) as (log, views):
        click.echo(
            f"following {log.store} into {views[0].database.description}; Ctrl-C stops", err=True
        )

        def report(view: View, count: int) -> None:
            click.echo(f"{view.name}: +{count} -> {view.position()}", err=True)

        try:
            follow(log, views, stop, poll_interval=poll_interval, progress=report)
        except KeyboardInterrupt:
            stop.set()
        finally:
            signal.signal(signal.SIGTERM, previous)
        positions = ", ".join(f"{v.name} at {v.position()}" for v in views)
        click.echo(f"stopped: {positions}", err=True)
