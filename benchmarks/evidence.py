"""Benchmark the auditor's side on SQLite: export, checkpoint, verify, bundles.

    python benchmarks/evidence.py [--events 1000000] [--folder DIR] [--repeat 3]

Builds a ledger of people who each opted in (two events each, through the ledger's own
aggregates, keys and sealing; see read_side.py), then measures in one run, on this
machine, the median of ``--repeat`` rounds, in events per second:

* ``export`` to JSON Lines, against the baseline of a plain loop over the same rows that
  decodes each stored event with ``json.loads`` and writes it with ``json.dumps``;
* ``checkpoint`` of the whole log from nothing (every leaf hashed and kept, then signed);
* ``verify`` of the live ledger against its checkpoint (every leaf recomputed), in one
  process and with a leaf-hashing worker process per CPU (``verify --log-only``); then
  also the ledger's lookups (the library's default), and the lookups and both views,
  caught up in the ledger's database, as the command line does;
* ``export --bundle`` (complete) and ``verify`` of that bundle offline;

and, in milliseconds, one person's proofs as a dossier makes them (from the kept tiles),
against a tree hashed from every kept leaf.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).parent))

from consent_ledger.projections import catch_up_all, open_view_database, open_views, view_checks
from read_side import BUSINESS, build, number  # the same ledger as the read-side benchmark

from consent_ledger import ConsentLedger
from consent_ledger.evidence.bundle import verify_bundle
from consent_ledger.evidence.bundling import write_bundle
from consent_ledger.evidence.merkle import MerkleTree, ProvingTree
from consent_ledger.reports.export import write_jsonl
from consent_ledger.storage.log import stored_events

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from consent_ledger.projections import View


def timed(work: Callable[[], object]) -> float:
    """Seconds ``work`` takes."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def baseline_export(ledger: ConsentLedger, out: Path) -> None:
    """What an export usually is: decode each row, dump it, write it."""
    with out.open("w", encoding="utf-8") as f:
        for position, stream_id, version, topic, state in stored_events(ledger.event_log):
            line = {
                "position": position,
                "stream_id": stream_id,
                "stream_version": version,
                "topic": topic,
                "event": json.loads(state),
            }
            f.write(json.dumps(line) + "\n")


def export(ledger: ConsentLedger, out: Path) -> None:
    """What ``consent-ledger export -o FILE`` does."""
    with out.open("wb") as f:
        write_jsonl(stored_events(ledger.event_log), f.write)


def checkpoint_from_nothing(ledger: ConsentLedger) -> None:
    """Forget every leaf and checkpoint, then checkpoint the whole log, as the CLI does."""
    evidence = ledger.tamper_evidence
    with evidence.database.transaction() as cursor:
        cursor.execute(f"DELETE FROM {evidence.leaves}")  # noqa: S608
        cursor.execute(f"DELETE FROM {evidence.checkpoints_table}")  # noqa: S608
        cursor.execute(f"DELETE FROM {evidence.tiles}")  # noqa: S608
    ledger.checkpoint(workers=None)


def verify_live(
    ledger: ConsentLedger, workers: int | None, *, derived: str = "", views: Sequence[View] = ()
) -> None:
    """What ``consent-ledger verify`` does (workers=None: one hashing process per CPU).

    ``derived``: "" the log only (``--log-only``), "lookups" the library's default,
    "views" the lookups and ``views`` too, as the command does.
    """
    checks = view_checks(views, ledger.event_log) if derived == "views" else []
    verification = ledger.verify(workers=workers, log_only=not derived, views=checks)
    if not verification.ok:
        raise SystemExit(verification.problem)


def views_of(ledger: ConsentLedger) -> list[View]:
    """Both views, in the ledger's database, caught up (built once, kept for later runs)."""
    views = open_views(open_view_database(ledger.event_log.store))
    started = time.perf_counter()
    if catch_up_all(ledger.event_log, views, batch_size=10_000)[views[0].name]:
        print(f"views caught up in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return views


def bundle(ledger: ConsentLedger, out: Path) -> None:
    """What ``consent-ledger export --bundle FILE`` does."""
    with out.open("wb") as f:
        write_bundle(ledger, f.write)


def verify_offline(ledger: ConsentLedger, path: Path) -> None:
    """What ``consent-ledger verify FILE --public-key KEY`` does."""
    with path.open("rb") as lines:
        result = verify_bundle(lines, [ledger.verifier_key()])
    if not result.ok:
        raise SystemExit(result.problem)


PERSON = 123  # the 124th person the benchmark built


def prove_one_person(ledger: ConsentLedger, *, whole_tree: bool) -> None:
    """What a dossier does for its proofs: one person's events proven under the checkpoint.

    ``whole_tree``: the baseline, a tree hashed from every kept leaf (what proofs cost
    before tiles were kept).
    """
    evidence = ledger.tamper_evidence
    signed = ledger.checkpoint()
    person = ledger.find_subject(number(PERSON), business_id=BUSINESS)
    assert person is not None  # noqa: S101 (the benchmark built this person)
    rows = ledger.event_log.read_stream(person)
    if whole_tree:
        tree: ProvingTree = MerkleTree(digest for _, digest in evidence.stored_leaves(signed.size))
    else:
        tree = evidence.tree(signed)
    assert evidence.prove(rows, signed, tree)  # noqa: S101


def main() -> None:
    """Build, measure, print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="consent-ledger-evidence-"))
    folder.mkdir(parents=True, exist_ok=True)

    if (folder / "ledger.db").exists():  # a ledger an earlier run built: measure it again
        ledger = ConsentLedger.open(folder / "ledger.db")
    else:
        ledger = build(folder / "ledger.db", max(1, args.events // 2))
    events = ledger.event_log.head()
    views = views_of(ledger)
    rounds: dict[str, list[float]] = {}
    proving: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        seconds = {
            "baseline: json.loads + json.dumps per row": timed(
                lambda: baseline_export(ledger, folder / "baseline.jsonl")
            ),
            "export to JSON Lines": timed(lambda: export(ledger, folder / "export.jsonl")),
            "checkpoint from nothing": timed(lambda: checkpoint_from_nothing(ledger)),
            "verify the log, one process": timed(lambda: verify_live(ledger, 1)),
            "verify the log, a hashing process per CPU (verify --log-only)": timed(
                lambda: verify_live(ledger, None)
            ),
            "verify the log and the lookups (the library's default)": timed(
                lambda: verify_live(ledger, None, derived="lookups")
            ),
            "verify the log, the lookups and both views (the command)": timed(
                lambda: verify_live(ledger, None, derived="views", views=views)
            ),
            "export --bundle (complete)": timed(lambda: bundle(ledger, folder / "ledger.bundle")),
            "verify the bundle offline": timed(
                lambda: verify_offline(ledger, folder / "ledger.bundle")
            ),
        }
        for name, value in seconds.items():
            rounds.setdefault(name, []).append(events / value)
        for name, whole_tree in (("tiles", False), ("whole tree", True)):
            proving.setdefault(name, []).append(
                timed(functools.partial(prove_one_person, ledger, whole_tree=whole_tree))
            )
    ledger.close()

    print(
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {events:,} events; "
        f"median of {args.repeat} rounds"
    )
    base = statistics.median(rounds["baseline: json.loads + json.dumps per row"])
    for name, rates in rounds.items():
        rate = statistics.median(rates)
        print(f"{name}: {rate:,.0f} events/s ({rate / base:.1f}x the baseline)")
    tiles, whole = (statistics.median(proving[name]) for name in ("tiles", "whole tree"))
    print(
        f"one person's proofs, as a dossier makes them: {tiles * 1000:.0f} ms from the kept "
        f"tiles (a tree hashed from every kept leaf: {whole * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
