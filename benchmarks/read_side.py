"""Benchmark the read side on SQLite: catch-up, send-time checks, audiences.

    python benchmarks/read_side.py [--subjects 100000] [--folder DIR] [--repeat 3]

Builds a ledger of N people who each opted in (2 events each, written 1,000 people per
transaction through the ledger's own aggregates, keys and sealing), then measures in one
run, on this machine, the median of ``--repeat`` rounds:

* catch-up of the consent-status and audit-log views from empty (events/s), against the
  baseline of plain eventsourcing projection practice: one transaction per event (decode,
  upsert a row, record tracking), as ProjectionRunner does;
* ``ConsentLedger.check`` against the caught-up status view, in process (p50/p99 µs),
  against folding the person's record instead;
* what ``consent-ledger audience`` does, for everyone (N eligible), to a CSV file (s).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from consent_ledger.cli.sending import write_recipients
from consent_ledger.projections import (
    AuditLogView,
    ConsentStatusView,
    catch_up_all,
    open_view_database,
)
from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from uuid_utils.compat import uuid7

from consent_ledger import ConsentLedger, Identifier, PublishNotice, RegisterBusiness
from consent_ledger.model.consent_record import ConsentRecord
from consent_ledger.model.taxonomy import Channel, Method
from consent_ledger.model.values import Provenance
from consent_ledger.storage.recorder import NewSubject

if TYPE_CHECKING:
    from consent_ledger.model.notice import NoticeVersion
    from consent_ledger.privacy.keys import KeyRing

BUSINESS = "acme"
BATCH = 1000


def number(i: int) -> str:
    """The i-th synthetic phone number (+44 7 and nine digits)."""
    return f"+447{i:09d}"


def build(path: Path, subjects: int) -> ConsentLedger:
    """A ledger with one notice and ``subjects`` people who opted in to two categories."""
    ledger, _ = ConsentLedger.create(
        path, business=RegisterBusiness(business_id=BUSINESS, display_name="Acme Outfitters")
    )
    notice = ledger.publish_notice(
        PublishNotice(
            business_id=BUSINESS,
            notice_id="whatsapp-optin",
            language="en",
            categories=("offers", "order-updates"),
            text="Yes, Acme Outfitters may message me on WhatsApp about orders and offers.",
        )
    )
    started = time.perf_counter()
    for start in range(0, subjects, BATCH):
        people = [
            opted_in(ledger._keyring, notice, Identifier.parse(number(i)))
            for i in range(start, min(start + BATCH, subjects))
        ]
        ledger.save(*(r for r, _ in people), new_subjects=[s for _, s in people])
    elapsed = time.perf_counter() - started
    print(f"built {subjects:,} people in {elapsed:.1f} s", file=sys.stderr)
    return ledger


def opted_in(
    keyring: KeyRing, notice: NoticeVersion, identifier: Identifier
) -> tuple[ConsentRecord, NewSubject]:
    """A new person's record with one opt-in, and the key and lookup rows to save with it."""
    subject_id = uuid7()
    data_key, wrapped = keyring.new_data_key(subject_id)
    sealed = data_key.seal(identifier.value, version=1, purpose="identifier")
    record = ConsentRecord.register(subject_id, BUSINESS, identifier.kind, sealed)
    record.opt_in(
        notice,
        channel=Channel.WHATSAPP,
        categories=("offers", "order-updates"),
        sender=None,
        provenance=Provenance(method=Method.WEB_FORM, occurred_at=datetime.now(UTC)),
    )
    lookup = keyring.lookup(BUSINESS, identifier)
    return record, NewSubject(subject_id=subject_id, lookup=lookup, wrapped_key=wrapped)


class BaselineView(SQLiteTrackingRecorder):
    """Plain eventsourcing practice: one transaction per event, row and tracking together."""

    def construct_create_table_statements(self) -> list[str]:
        """The tracking table and one row per subject."""
        return [
            *super().construct_create_table_statements(),
            (
                "CREATE TABLE IF NOT EXISTS baseline (subject_id TEXT PRIMARY KEY, "
                "categories TEXT, updated_at TEXT)"
            ),
        ]

    def upsert(self, subject_id: str, categories: str, updated_at: str, tracking: Tracking) -> None:
        """Write one row and the tracking record in one transaction."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                "INSERT INTO baseline VALUES (?, ?, ?) ON CONFLICT (subject_id) DO UPDATE "
                "SET categories = excluded.categories, updated_at = excluded.updated_at",
                (subject_id, categories, updated_at),
            )
            self._insert_tracking(c, tracking)


def baseline_rate(ledger: ConsentLedger, database: Path, events: int) -> float:
    """Events per second through the one-transaction-per-event baseline."""
    database.unlink(missing_ok=True)
    datastore = SQLiteDatastore(db_name=str(database))
    view = BaselineView(datastore)
    view.create_table()
    log = ledger.event_log
    done, after = 0, 0
    started = time.perf_counter()
    while done < events and (page := log.read_raw(after, 1000)):
        for notification in page[: events - done]:
            event = log.mapper.to_domain_event(notification)
            categories = " ".join(getattr(event, "categories", ()) or ())
            tracking = Tracking("ConsentLedger", notification.id)
            moment = str(getattr(event, "timestamp", ""))
            view.upsert(str(event.originator_id), categories, moment, tracking)
            done += 1
        after = page[-1].id
    rate = done / (time.perf_counter() - started)
    datastore.close()
    return rate


def catch_up_rates(ledger: ConsentLedger, folder: Path) -> dict[str, float]:
    """Events per second catching up views from empty: each alone, then both in one pass."""
    rates = {}
    for name, classes in (
        ("consent-status", [ConsentStatusView]),
        ("audit-log", [AuditLogView]),
        ("both views, one pass", [ConsentStatusView, AuditLogView]),
    ):
        path = folder / "views.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        views = open_view_database(path)
        started = time.perf_counter()
        catch_up_all(ledger.event_log, [view_class(views) for view_class in classes])
        rates[name] = ledger.event_log.head() / (time.perf_counter() - started)
        views.close()
    return rates


def point_read_floor(view: ConsentStatusView, subjects: list[str]) -> float:
    """p50 µs of one bare sqlite3 primary-key read of the status view: this machine's floor."""
    connection = sqlite3.connect(view.database.description)
    select = "SELECT * FROM consent_status WHERE subject_id = ?"
    times = []
    for subject in subjects:
        started = time.perf_counter_ns()
        connection.execute(select, (subject,)).fetchall()
        times.append((time.perf_counter_ns() - started) / 1000)
    connection.close()
    return statistics.median(times)


def check_latencies(
    ledger: ConsentLedger, view: ConsentStatusView, subjects: int, samples: int
) -> tuple[list[float], list[float]]:
    """Microseconds per check: against the view, and folding the record instead."""
    rng = random.Random(7)
    numbers = [number(rng.randrange(subjects)) for _ in range(samples)]
    for n in numbers[:200]:  # warm statement caches
        ledger.check(n, business_id=BUSINESS, category="offers", source=view)
    via_view, via_record = [], []
    for n in numbers:
        started = time.perf_counter_ns()
        decision = ledger.check(n, business_id=BUSINESS, category="offers", source=view)
        via_view.append((time.perf_counter_ns() - started) / 1000)
        if not decision.allowed:
            msg = f"unexpected decision for {n}: {decision}"
            raise SystemExit(msg)
    for n in numbers[: samples // 10]:
        started = time.perf_counter_ns()
        ledger.check(n, business_id=BUSINESS, category="offers")
        via_record.append((time.perf_counter_ns() - started) / 1000)
    return via_view, via_record


def audience_seconds(
    ledger: ConsentLedger, view: ConsentStatusView, out: Path
) -> tuple[int, float]:
    """What `consent-ledger audience` does: view query, policy, identifiers opened, CSV rows."""
    started = time.perf_counter()
    with out.open("w", newline="") as f:
        recipients = ledger.audience_pages(
            view.audience_pages(BUSINESS, "whatsapp", "offers", None),
            business_id=BUSINESS,
            category="offers",
        )
        count = write_recipients(
            recipients, f, "csv", channel="whatsapp", category="offers", sender=None
        )
    return count, time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    """Build, measure, print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--baseline-events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="consent-ledger-bench-"))
    folder.mkdir(parents=True, exist_ok=True)

    ledger = build(folder / "ledger.db", args.subjects)
    rounds: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        round_results = {
            "baseline": baseline_rate(ledger, folder / "baseline.db", args.baseline_events),
            **catch_up_rates(ledger, folder),
        }
        views = open_view_database(folder / "views.db")
        view = ConsentStatusView(views)
        via_view, via_record = check_latencies(ledger, view, args.subjects, args.samples)
        sample = random.Random(3).sample(view.subject_ids(), min(args.samples, args.subjects))
        round_results["point read"] = point_read_floor(view, [str(s) for s in sample])
        count, seconds = audience_seconds(ledger, view, folder / "audience.csv")
        views.close()
        round_results |= {
            "check p50": percentile(via_view, 50),
            "check p99": percentile(via_view, 99),
            "fold p50": percentile(via_record, 50),
            "fold p99": percentile(via_record, 99),
            "audience": seconds,
        }
        for name, value in round_results.items():
            rounds.setdefault(name, []).append(value)
    median = {name: statistics.median(values) for name, values in rounds.items()}
    head = ledger.event_log.head()
    ledger.close()

    print(
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite "
        f"{__import__('sqlite3').sqlite_version}; {args.subjects:,} people, {head:,} events; "
        f"median of {args.repeat} rounds"
    )
    base = median["baseline"]
    print(f"baseline, one transaction per event: {base:,.0f} events/s")
    for name in ("consent-status", "audit-log", "both views, one pass"):
        rate = median[name]
        print(f"catch-up {name}, batches of 1,000: {rate:,.0f} events/s ({rate / base:.1f}x)")
    print(
        f"check via the status view: p50 {median['check p50']:.0f} µs, "
        f"p99 {median['check p99']:.0f} µs "
        f"(one bare sqlite3 read of the view: p50 {median['point read']:.0f} µs)"
    )
    print(
        f"check folding the record:  p50 {median['fold p50']:.0f} µs, "
        f"p99 {median['fold p99']:.0f} µs"
    )
    print(f"audience of {count:,} to CSV: {median['audience']:.2f} s")


if __name__ == "__main__":
    main()
