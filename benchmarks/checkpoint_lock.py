"""Measure how long opt-outs wait while a checkpoint runs, on SQLite.

    python benchmarks/checkpoint_lock.py [--events 1000000] [--folder DIR] [--quiet 5]

Builds a ledger of people who each opted in (the builder of evidence.py and read_side.py;
with ``--folder``, a ledger an earlier run built there is used again), and copies it, so
that every run starts from the same ledger with no checkpoint. Then a second process opts
those people out one after another, as fast as it can, timing each call; after a quiet
spell of ``--quiet`` seconds (the baseline) this process checkpoints the whole log from
nothing with a hashing process per CPU, as ``consent-ledger checkpoint`` does. Reports,
for the opt-outs that ran while the checkpoint did and for those of the quiet spell: how
many, the median and the longest time one took, and how many failed (and why); and the
checkpoint's own speed.

Not run in CI (it takes minutes). To measure other code (an earlier commit, say), run
this file with ``PYTHONPATH`` naming a tree where that code imports as ``consent_ledger``:
the writer process inherits it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from read_side import BUSINESS, build, number  # the same ledger as the other benchmarks

import consent_ledger
from consent_ledger import ConsentLedger, OptOut

WRITER_LIMIT_SECONDS = 1800  # a writer left behind stops by itself


def write_opt_outs(db: Path, out: Path, stop: Path) -> None:
    """In the writer process: opt people out until ``stop`` exists; one JSON line per call."""
    give_up = time.monotonic() + WRITER_LIMIT_SECONDS
    with ConsentLedger.open(db) as ledger, out.open("w", encoding="utf-8") as lines:
        person = 0
        while not stop.exists() and time.monotonic() < give_up:
            started, error = time.time(), None
            try:
                command = OptOut(business_id=BUSINESS, identifier=number(person), method="api")
                ledger.opt_out(command)
            except Exception as e:  # noqa: BLE001 (a failed opt-out is what this measures)
                error = f"{type(e).__module__}.{type(e).__name__}: {str(e)[:120]}"
            seconds = time.time() - started
            lines.write(json.dumps({"start": started, "seconds": seconds, "error": error}) + "\n")
            lines.flush()
            person += 1


def prepare(folder: Path, events: int) -> Path:
    """A copy of the built ledger (built first if the folder has none), to run on."""
    built = folder / "built.db"
    if not built.exists():
        build(built, max(1, events // 2)).close()
        with sqlite3.connect(built) as connection:  # everything into the file: one to copy
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    run = folder / "run.db"
    for suffix in ("", "-wal", "-shm", ".key"):
        Path(f"{run}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(built, run)
    shutil.copy2(f"{built}.key", f"{run}.key")  # keeps its mode, 0600
    return run


def summary(calls: list[dict[str, object]]) -> str:
    """How many calls, how long they took (median, longest), how many failed and why."""
    if not calls:
        return "no opt-outs"
    seconds = [float(str(c["seconds"])) for c in calls]
    errors: dict[str, int] = {}
    for call in calls:
        if call["error"]:
            kind = str(call["error"]).split(":", 1)[0]
            errors[kind] = errors.get(kind, 0) + 1
    failed = ", ".join(f"{n} {kind}" for kind, n in errors.items()) or "none"
    p99 = seconds[0]
    if len(seconds) > 1:
        p99 = statistics.quantiles(seconds, n=100, method="inclusive")[98]
    return (
        f"{len(calls)} opt-outs, median {statistics.median(seconds) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.0f} ms, longest {max(seconds) * 1000:.0f} ms; failed: {failed}"
    )


def measure(run: Path, quiet: float, *, writing: bool = True) -> None:
    """Start the writer, wait out the quiet spell, checkpoint, stop the writer, report.

    ``writing=False``: no writer, no quiet spell; the checkpoint alone, for its speed.
    """
    out, stop = run.with_suffix(".calls"), run.with_suffix(".stop")
    started = ended = quiet_from = time.time()
    writer = start_writer(run, out, stop) if writing else None
    try:
        if writer is not None:
            quiet_from = time.time()
            time.sleep(quiet)
        with ConsentLedger.open(run) as ledger:
            started = time.time()
            signed = ledger.checkpoint(workers=None)
            ended = time.time()
        time.sleep(1 if writing else 0)
    finally:
        if writer is not None:
            stop_writer(writer, stop)
    print(
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}; "
        f"consent_ledger from {Path(consent_ledger.__file__).parent}"
    )
    print(
        f"checkpoint of {signed.size:,} events from nothing: {ended - started:.1f} s "
        f"({signed.size / (ended - started):,.0f} events/s)"
    )
    if writer is not None:
        calls = [json.loads(line) for line in out.read_text().splitlines()]
        during = [c for c in calls if c["start"] < ended and c["start"] + c["seconds"] > started]
        before = [
            c for c in calls if quiet_from <= c["start"] and c["start"] + c["seconds"] < started
        ]
        print(f"opt-outs while it ran: {summary(during)}")
        print(f"opt-outs in the {quiet:g} s before it: {summary(before)}")


def start_writer(run: Path, out: Path, stop: Path) -> subprocess.Popen[bytes]:
    """The writer process, once it has recorded its first opt-out."""
    stop.unlink(missing_ok=True)
    out.write_text("")
    writer = subprocess.Popen(  # noqa: S603 (this interpreter, this file)
        [sys.executable, __file__, "--writer", str(run), str(out), str(stop)]
    )
    deadline = time.monotonic() + 120
    while not out.read_text() and writer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return writer


def stop_writer(writer: subprocess.Popen[bytes], stop: Path) -> None:
    """Tell the writer to stop; stop it by its pid if it does not within two minutes."""
    stop.touch()
    try:
        writer.wait(timeout=120)
    except subprocess.TimeoutExpired:
        writer.kill()
        writer.wait()


def main() -> None:
    """Build, measure, print (or, with --writer, be the writer)."""
    if len(sys.argv) == 5 and sys.argv[1] == "--writer":  # noqa: PLR2004 (the writer's arguments)
        write_opt_outs(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--quiet", type=float, default=5.0)
    parser.add_argument("--no-writer", action="store_true", help="the checkpoint alone")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="consent-ledger-checkpoint-lock-"))
    folder.mkdir(parents=True, exist_ok=True)
    measure(prepare(folder, args.events), args.quiet, writing=not args.no_writer)


if __name__ == "__main__":
    main()
