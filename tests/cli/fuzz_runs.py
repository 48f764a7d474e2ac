"""Running a fuzzed command line: the ledger it runs against, and what went wrong.

Each invocation runs in a fresh copy of a small prepared ledger and its input files, with
its own working directory, a FIFO held open at both ends, and a hook on the exceptions
Python can only print; :func:`problems` then lists what a user must never see.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import shutil
import sqlite3
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from click.testing import CliRunner
from consent_ledger.cli import main

from tests.cli.conftest import new_ledger, ok, unraisable_exceptions
from tests.cli.fuzzing import ADA, BRUNO, FIFO, LEDGER, PAYLOADS, SHOP

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.cli.fuzzing import Invocation

EXIT_CODES = {0, 1, 2, 3}


@dataclass
class Outcome:
    """What an invocation did, as a user and the ledger's files see it."""

    exit_code: int
    stdout: str
    stderr: str
    exception: str | None
    unraisable: list[str] = field(default_factory=list)
    events: tuple[int, int] = (0, 0)
    files_changed: list[str] = field(default_factory=list)


# The ledger and files it runs against ---------------------------------------------------


def prepare(folder: Path) -> Path:
    """A small ledger (people, notices, a template, a checkpoint) and the files to feed it."""
    runner = CliRunner()
    db = new_ledger(runner, str(folder / LEDGER))
    for person, categories in ((ADA, "offers,order-updates"), (BRUNO, "order-updates")):
        ok(runner, "opt-in", person, "--db", db, "-c", categories, "--notice", "whatsapp-optin@1",
           "--method", "web-form")  # fmt: skip
    ok(runner, "opt-out", BRUNO, "--db", db, "--all", "--method", "sms-keyword")
    ok(runner, "marketing-preference", ADA, "--db", db, "--stop", "--sender", SHOP)
    ok(
        runner,
        "template",
        "set",
        "order_shipped",
        "--db",
        db,
        "-l",
        "en_US",
        "--category",
        "UTILITY",
    )
    ok(runner, "ingest", "whatsapp", str(PAYLOADS / "text_stop.json"), "--db", db)
    ok(runner, "checkpoint", "--db", db)
    (folder / "ledger.pub").write_text(ok(runner, "checkpoint", "--db", db, "--print-key").stdout)
    (folder / "checkpoint.note").write_text(ok(runner, "checkpoint", "--db", db).stdout)
    ok(runner, "export", "--db", db, "--bundle", str(folder / "bundle.jsonl"))
    ok(runner, "projections", "catch-up", "--db", db)
    files = {
        "notice.txt": b"Yes, Acme Outfitters may message me on WhatsApp about offers.\n",
        "recipients.csv": f"identifier,category\n{ADA},offers\n{BRUNO},order-updates\n".encode(),
        "recipients.jsonl": f'{{"identifier": "{ADA}", "category": "offers"}}\n'.encode(),
        "webhooks.jsonl": (PAYLOADS / "bodies.jsonl").read_bytes(),
        "keywords.json": b'{"defaults": true, "rules": [{"word": "BASTA", "kind": "opt_out"}]}',
        "latin1.txt": "Acme Outfitters: caf\u00e9, identifier\n".encode("latin-1"),
        "utf16.txt": "identifier,category\n+447700900123,offers\n".encode("utf-16"),
        "empty.txt": b"",
        "huge-field.csv": b'identifier,category\n"' + b"9" * 200_000 + b'",offers\n',
        "binary.bin": bytes(range(256)) * 4,
        "evidence.pdf": b"%PDF-1.4 synthetic evidence\n",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    (folder / "folder").mkdir()
    return folder


# How to run it --------------------------------------------------------------------------


def run(invocation: Invocation, prepared: Path) -> Outcome:
    """Run ``invocation`` in a fresh copy of ``prepared``; report what it did."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        work = Path(tmp) / "w"
        shutil.copytree(prepared, work)
        os.mkfifo(work / FIFO)
        before = _snapshot(work)
        events = _events(work / LEDGER)
        with _drained(work / FIFO), contextlib.chdir(work), unraisable_exceptions() as unraisable:
            outcome = _invoke(invocation, work)
            gc.collect()  # what the command left open is finalised now, while we listen
        outcome.unraisable = unraisable
        outcome.events = (events, _events(work / LEDGER))
        after = _snapshot(work)
        outcome.files_changed = sorted(
            name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
        )
        return outcome


def _invoke(invocation: Invocation, work: Path) -> Outcome:
    stdin = invocation.stdin
    if isinstance(stdin, str):
        stdin = (work / stdin).read_bytes()
    result = CliRunner().invoke(
        main, list(invocation.args), input=stdin, env={"CONSENT_LEDGER_DB": LEDGER}
    )
    exception = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exception = _describe(result.exception)
    # The result holds the exception, its frames and what they hold: let them go now.
    return Outcome(result.exit_code, result.stdout, result.stderr, exception)


def _describe(error: BaseException) -> str:
    """The exception and the innermost frame of the project that raised it."""
    frames = [
        f for f in traceback.extract_tb(error.__traceback__) if "consent_ledger" in f.filename
    ]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].name}" if frames else ""
    return f"{type(error).__name__}: {str(error)[:120]}{where}"


@contextlib.contextmanager
def _drained(fifo: Path) -> Iterator[None]:
    """Hold the FIFO open at both ends and empty it, so a command writing into it never waits."""
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            if select.select([fd], [], [], 0.05)[0]:
                with contextlib.suppress(BlockingIOError):
                    os.read(fd, 1 << 16)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        os.close(fd)


def _events(db: Path) -> int:
    """How many events the ledger has stored."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])


def _snapshot(work: Path) -> dict[str, tuple[int, int] | None]:
    """Every file but the ledger's own database files (reads catch views up) and the FIFO."""
    skipped = {LEDGER, f"{LEDGER}-wal", f"{LEDGER}-shm", FIFO}
    found: dict[str, tuple[int, int] | None] = {}
    for path in work.rglob("*"):
        name = str(path.relative_to(work))
        if name in skipped:
            continue
        stat = path.lstat()
        found[name] = None if path.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return found


# What went wrong ------------------------------------------------------------------------


def problems(invocation: Invocation, outcome: Outcome) -> list[str]:
    """What a user must never see; empty when the invocation behaved."""
    found = []
    if outcome.exception is not None:
        found.append(f"traceback: {outcome.exception}")
    if "Traceback" in outcome.stderr or "Traceback" in outcome.stdout:
        found.append("a traceback was printed")
    found.extend(f"exception ignored: {u}" for u in outcome.unraisable)
    if outcome.exit_code not in EXIT_CODES or (
        outcome.exit_code == 3 and invocation.path != ("check",)
    ):
        found.append(f"exit status {outcome.exit_code}")
    if outcome.exit_code in (1, 2) and outcome.exception is None:
        found.extend(_failure_problems(invocation, outcome))
    return found


def _may_record_part(invocation: Invocation) -> bool:
    """``ingest whatsapp`` records what it can read and reports the rest (exit 1)."""
    return invocation.path == ("ingest", "whatsapp") and "--strict" not in invocation.args


def _may_print_part(invocation: Invocation) -> bool:
    """Commands whose data goes out before a failure they report by design."""
    args, path = invocation.args, invocation.path
    return (
        _may_record_part(invocation)
        or (path == ("check",) and "--input" in args)  # the rows it could read
        or (path == ("verify",) and "json" in args)  # the report of a failed verification
    )


def _failure_problems(invocation: Invocation, outcome: Outcome) -> list[str]:
    """A failing command says why on stderr, prints no data and writes nothing."""
    found = []
    if "Error: " not in outcome.stderr and not _may_record_part(invocation):
        found.append("failed without an Error: line")
    if outcome.stdout and not _may_print_part(invocation):
        found.append(f"failed, but wrote to stdout: {outcome.stdout[:80]!r}")
    if outcome.events[0] != outcome.events[1] and not _may_record_part(invocation):
        found.append(f"failed, but stored events {outcome.events[0]} -> {outcome.events[1]}")
    if outcome.files_changed:
        found.append(f"failed, but changed files: {', '.join(outcome.files_changed)}")
    return found
