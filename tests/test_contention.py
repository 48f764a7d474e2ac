"""Writers under contention: lost races and a locked database are retried, opt-outs land.

A command that loses a race, or finds the database locked by another writer, tries again
on fresh state. An opt-in gives up after a few attempts with a clear error; an opt-out
keeps trying until it lands, for as long as the withdrawal deadline allows.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from consent_ledger.cli import main
from eventsourcing.persistence import IntegrityError

from consent_ledger import (
    ConcurrentUpdateError,
    ConsentLedger,
    LedgerBusyError,
    OptIn,
    OptOut,
    RecordPlatformPreference,
    RegisterBusiness,
)
from consent_ledger.application import books

from .conftest import BUSINESS, publish_standard_notices

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ADA = "+447700900123"
LOCK_TIMEOUT = "1"  # seconds a write waits for the SQLite lock before it is "database is locked"


def opt_in(identifier: str = ADA) -> OptIn:
    return OptIn(
        business_id=BUSINESS,
        identifier=identifier,
        categories=("offers",),
        notice="whatsapp-optin@1",
        method="web-form",
    )


def opt_out(identifier: str = ADA) -> OptOut:
    return OptOut(business_id=BUSINESS, identifier=identifier, method="whatsapp-thread")


def count(ledger: ConsentLedger, event_type: str, identifier: str = ADA) -> int:
    if ledger.find_subject(identifier, business_id=BUSINESS) is None:
        return 0
    history = ledger.get_history(identifier, business_id=BUSINESS)
    return sum(entry.event_type == event_type for entry in history.entries)


class Saves:
    """Stands in for the ledger's save: loses the first ``losses`` races, then saves."""

    def __init__(self, ledger: ConsentLedger, losses: float) -> None:
        self.calls = 0
        self.losses = losses
        self._save = ledger.save

    def __call__(self, *aggregates: Any, **rows: Any) -> Any:
        self.calls += 1
        if self.calls <= self.losses:
            msg = "duplicate key: another writer saved this version first"
            raise IntegrityError(msg)
        return self._save(*aggregates, **rows)


# Lost races.


def test_an_opt_out_lands_after_more_lost_races_than_an_opt_in_may_lose(
    ledger: ConsentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves = Saves(ledger, losses=books.MAX_ATTEMPTS + 5)
    monkeypatch.setattr(ledger, "save", saves)

    recorded = ledger.opt_out(opt_out())

    assert recorded.event_type == "OptedOut"
    assert saves.calls == books.MAX_ATTEMPTS + 6
    assert count(ledger, "OptedOut") == 1


def test_a_marketing_stop_is_as_patient_as_an_opt_out(
    ledger: ConsentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "save", Saves(ledger, losses=books.MAX_ATTEMPTS + 2))

    recorded = ledger.record_platform_preference(
        RecordPlatformPreference(business_id=BUSINESS, identifier=ADA, stopped=True)
    )

    assert recorded.event_type == "PlatformMarketingStopped"


def test_an_opt_in_gives_up_after_its_attempts_and_records_nothing(
    ledger: ConsentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves = Saves(ledger, losses=float("inf"))
    monkeypatch.setattr(ledger, "save", saves)

    with pytest.raises(ConcurrentUpdateError, match="nothing was recorded: run it again"):
        ledger.opt_in(opt_in())
    assert saves.calls == books.MAX_ATTEMPTS
    assert ledger.find_subject(ADA, business_id=BUSINESS) is None


def test_an_opt_out_gives_up_only_at_the_deadline(
    ledger: ConsentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(books, "WITHDRAWAL_DEADLINE_SECONDS", 3.0)  # back-offs: at most 1 s
    saves = Saves(ledger, losses=float("inf"))
    monkeypatch.setattr(ledger, "save", saves)

    with pytest.raises(ConcurrentUpdateError, match="nothing was recorded: run it again"):
        ledger.opt_out(opt_out())
    assert saves.calls > books.MAX_ATTEMPTS
    assert ledger.find_subject(ADA, business_id=BUSINESS) is None


def test_many_writers_opting_one_person_out_at_once_all_land(
    ledger_at: tuple[ConsentLedger, str, Path | None],
) -> None:
    ledger, db, key_file = ledger_at
    writers, each = 12, 3
    errors: list[Exception] = []
    start = threading.Barrier(writers)

    def write() -> None:
        with ConsentLedger.open(db, key_file=key_file) as own:
            start.wait()
            try:
                for _ in range(each):
                    own.opt_out(opt_out())
            except Exception as e:  # noqa: BLE001 (any failure is the test's finding)
                errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert count(ledger, "OptedOut") == writers * each


# A locked database.


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """An SQLite ledger with business acme and its notices, closed; its path."""
    db = str(tmp_path / "ledger.db")
    ledger, _ = ConsentLedger.create(
        db, business=RegisterBusiness(business_id=BUSINESS, display_name="Acme Outfitters")
    )
    publish_standard_notices(ledger)
    ledger.close()
    return db


OPT_OUT_REPEATEDLY = """
import os, sys, time
from pathlib import Path
from consent_ledger import ConsentLedger, OptOut
db, folder, times, who = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with ConsentLedger.open(db) as ledger:
    (folder / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not (folder / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(times):
        ledger.opt_out(OptOut(business_id="acme", identifier=who, method="sms-keyword"))
"""


def test_many_processes_opting_one_person_out_at_once_all_land(
    sqlite_db: str, tmp_path: Path
) -> None:
    """16 processes opting one person out 10 times each, all at once (SQLite: one file lock)."""
    processes, times = 16, 10
    command = [sys.executable, "-c", OPT_OUT_REPEATEDLY, sqlite_db, str(tmp_path), str(times)]
    running = [
        subprocess.Popen(  # noqa: S603 (this interpreter, fixed code)
            [*command, ADA], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < processes and time.monotonic() < deadline:
        if any(process.poll() is not None for process in running):
            break  # one failed to start: its error is reported below
        time.sleep(0.05)
    (tmp_path / "go").touch()
    failures = [error for process in running if (error := finished(process))]

    assert failures == []
    with ConsentLedger.open(sqlite_db) as ledger:
        assert count(ledger, "OptedOut") == processes * times


def finished(process: subprocess.Popen[str]) -> str:
    """What a process wrote to stderr if it failed (or was stopped after two minutes)."""
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        return f"stopped after 120 s: {stderr}"
    return stderr if process.returncode else ""


@pytest.fixture
def sqlite_ledger(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An SQLite ledger whose writers (opened from now on) wait 1 s for the lock, not 5."""
    monkeypatch.setenv("CONSENTLEDGER_SQLITE_LOCK_TIMEOUT", LOCK_TIMEOUT)
    return sqlite_db


class Lock:
    """The ledger's write lock, held by another connection (as another process would)."""

    def __init__(self, db: str) -> None:
        self.connection = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.connection.execute("BEGIN IMMEDIATE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.connection.execute("ROLLBACK")
            self.connection.close()


@pytest.fixture
def lock(sqlite_ledger: str) -> Iterator[Lock]:
    held = Lock(sqlite_ledger)
    yield held
    held.release()


@pytest.fixture
def released_on_retry(lock: Lock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock is released once a write has failed on it, before the write tries again."""
    back_off = books._back_off  # called before each new attempt

    def released_before_trying_again(attempt: int) -> None:
        if attempt:
            lock.release()
        back_off(attempt)

    monkeypatch.setattr(books, "_back_off", released_before_trying_again)


@pytest.mark.usefixtures("released_on_retry")
def test_a_write_that_found_the_ledger_locked_is_tried_again(sqlite_ledger: str) -> None:
    with ConsentLedger.open(sqlite_ledger) as ledger:
        recorded = ledger.opt_in(opt_in())

        assert recorded.event_type == "OptedIn"
        assert count(ledger, "OptedIn") == 1


@pytest.mark.usefixtures("released_on_retry")
def test_registering_a_business_waits_out_a_lock(sqlite_ledger: str) -> None:
    with ConsentLedger.open(sqlite_ledger) as ledger:
        ledger.register_business(RegisterBusiness(business_id="bolt", display_name="Bolt Bikes"))

        assert ledger.get_business("bolt").display_name == "Bolt Bikes"


@pytest.mark.usefixtures("released_on_retry")
def test_noting_a_webhook_item_waits_out_a_lock(sqlite_ledger: str) -> None:
    with ConsentLedger.open(sqlite_ledger) as ledger:
        assert ledger.note_once("wamid.HELP-1") is True
        assert ledger.note_once("wamid.HELP-1") is False


def test_an_opt_in_that_always_finds_the_ledger_locked_says_it_was_busy(
    sqlite_ledger: str, lock: Lock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(books, "MAX_ATTEMPTS", 2)
    with ConsentLedger.open(sqlite_ledger) as ledger:
        with pytest.raises(LedgerBusyError, match=r"the ledger was busy.*nothing was recorded"):
            ledger.opt_in(opt_in())
        lock.release()

        assert ledger.find_subject(ADA, business_id=BUSINESS) is None


def test_an_opt_out_waits_out_a_lock_until_its_deadline(
    sqlite_ledger: str, lock: Lock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(books, "WITHDRAWAL_DEADLINE_SECONDS", 2.5)
    with ConsentLedger.open(sqlite_ledger) as ledger:
        with pytest.raises(LedgerBusyError, match="nothing was recorded: run it again"):
            ledger.opt_out(opt_out())
        lock.release()

        assert ledger.find_subject(ADA, business_id=BUSINESS) is None


@pytest.mark.usefixtures("lock")
def test_the_command_line_reports_a_locked_ledger_in_one_line(
    sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(books, "MAX_ATTEMPTS", 2)
    args = ["opt-in", ADA, "--db", sqlite_ledger, "-c", "offers"]
    args += ["--notice", "whatsapp-optin@1", "--method", "web-form"]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: the ledger was busy")
    assert result.stderr.count("\n") == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
