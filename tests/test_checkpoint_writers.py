"""Checkpoints and writers at once: hashing holds up no writer, and the chain stays one chain.

A checkpoint reads and hashes the new events with no write lock held, and takes the lock
only to keep a page of leaves or to sign. The tests pause a checkpoint in the middle of
its hashing (or just after it) and write, or checkpoint, from another thread meanwhile.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import TYPE_CHECKING, Any

from consent_ledger import ConsentLedger, Identifier, OptIn, OptOut
from consent_ledger.evidence import growth
from consent_ledger.evidence.leaves import leaf_pages as hashed_pages
from consent_ledger.evidence.merkle import consistency_proof, verify_consistency
from consent_ledger.storage.log import stored_events

from .conftest import BUSINESS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import pytest

    from consent_ledger.evidence.integrity import SignedCheckpoint
    from consent_ledger.evidence.leaves import LeafPage
    from consent_ledger.storage.log import EventLog

WAIT = 20.0  # seconds: a paused checkpoint goes on after this even if never resumed


def person(n: int) -> Identifier:
    return Identifier.parse(f"+44 7700 900{n:03d}")


def opt_in(n: int) -> OptIn:
    return OptIn(
        business_id=BUSINESS,
        identifier=person(n),
        categories=("offers",),
        notice="whatsapp-optin@1",
        method="web-form",
    )


def opt_out(n: int) -> OptOut:
    return OptOut(business_id=BUSINESS, identifier=person(n), method="sms-keyword")


def record(ledger: ConsentLedger, people: range) -> None:
    for n in people:
        ledger.opt_in(opt_in(n))


class Pause:
    """Pauses the first checkpoint's hashing: at its first page, or after its last one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, after_last: bool = False) -> None:
        self.reached = threading.Event()
        self.resume = threading.Event()
        self.went_on = threading.Event()  # the hashing went on (resumed, or tired of waiting)
        self.after_last = after_last
        self._calls = 0

        @contextlib.contextmanager
        def leaf_pages(log: EventLog, after: int, *, workers: int | None = 1) -> Iterator[Any]:
            self._calls += 1
            with hashed_pages(log, after, workers=workers) as pages:
                yield self._paused(pages) if self._calls == 1 else pages

        monkeypatch.setattr(growth, "leaf_pages", leaf_pages)

    def _paused(self, pages: Iterator[LeafPage]) -> Iterator[LeafPage]:
        for page in pages:
            if not self.after_last:
                self._wait()
            yield page
        if self.after_last:
            self._wait()

    def _wait(self) -> None:
        if not self.reached.is_set():
            self.reached.set()
            self.resume.wait(WAIT)
            self.went_on.set()


@contextlib.contextmanager
def checkpoint_in_thread(
    ledger: ConsentLedger, pause: Pause
) -> Iterator[Callable[[], SignedCheckpoint]]:
    """Start a checkpoint in a thread, wait until it pauses; give its result when resumed."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["signed"] = ledger.checkpoint()
        except Exception as e:  # noqa: BLE001 (reported by the test)
            result["error"] = e

    thread = threading.Thread(target=run)
    thread.start()

    def finish() -> SignedCheckpoint:
        pause.resume.set()
        thread.join(WAIT * 2)
        assert "error" not in result, result["error"]
        signed: SignedCheckpoint = result["signed"]
        return signed

    try:
        assert pause.reached.wait(WAIT), "the checkpoint never started hashing"
        yield finish
    finally:
        pause.resume.set()
        thread.join(WAIT * 2)


def assert_one_chain(ledger: ConsentLedger) -> None:
    """Checkpoints only grow, each consistent with the one before, and the log verifies."""
    kept = ledger.tamper_evidence.checkpoints()
    leaves = [digest for _, digest in ledger.tamper_evidence.stored_leaves()]
    sizes = [c.size for c in kept]
    assert sizes == sorted(set(sizes))
    for old, new in itertools.pairwise(kept):
        proof = consistency_proof(leaves[: new.size], old.size)
        assert verify_consistency(
            old.size, new.size, old.checkpoint.root, new.checkpoint.root, proof
        )
    verification = ledger.verify()
    assert verification.ok, verification.problem


def events(ledger: ConsentLedger) -> int:
    """How many events the log holds (PostgreSQL positions have gaps: not the head)."""
    return sum(1 for _ in stored_events(ledger.event_log))


def opted_out(ledger: ConsentLedger, n: int) -> int:
    history = ledger.get_history(person(n), business_id=BUSINESS)
    return sum(entry.event_type == "OptedOut" for entry in history.entries)


def test_an_opt_out_is_recorded_while_a_checkpoint_is_hashing(
    ledger: ConsentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(ledger, range(3))
    pause = Pause(monkeypatch)

    with checkpoint_in_thread(ledger, pause) as finish:
        recorded = ledger.opt_out(opt_out(1))
        still_hashing = not pause.went_on.is_set()
        finish()

    assert recorded.event_type == "OptedOut"
    assert still_hashing
    assert opted_out(ledger, 1) == 1
    assert_one_chain(ledger)


def test_a_checkpoint_that_lost_the_race_extends_the_one_signed_meanwhile(
    ledger: ConsentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(ledger, range(3))
    pause = Pause(monkeypatch)

    with checkpoint_in_thread(ledger, pause) as finish:
        record(ledger, range(3, 5))
        meanwhile = ledger.checkpoint()
        record(ledger, range(5, 7))
        late = finish()

    assert late.size == events(ledger) > meanwhile.size
    assert [c.size for c in ledger.tamper_evidence.checkpoints()] == [meanwhile.size, late.size]
    assert_one_chain(ledger)


def test_a_checkpoint_overtaken_by_a_larger_one_signs_nothing_more(
    ledger: ConsentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(ledger, range(3))
    pause = Pause(monkeypatch, after_last=True)

    with checkpoint_in_thread(ledger, pause) as finish:
        record(ledger, range(3, 5))
        larger = ledger.checkpoint()
        overtaken = finish()

    assert overtaken == larger
    assert len(ledger.tamper_evidence.checkpoints()) == 1
    assert_one_chain(ledger)


def test_the_log_verifies_after_writers_and_checkpoints_ran_together(
    ledger_at: tuple[ConsentLedger, str, Path | None],
) -> None:
    ledger, db, key_file = ledger_at
    writers, each = 3, 6
    errors: list[Exception] = []
    done = threading.Event()
    start = threading.Barrier(writers + 1)

    def write(w: int) -> None:
        with ConsentLedger.open(db, key_file=key_file) as own:
            start.wait()
            try:
                for i in range(each):
                    own.opt_in(opt_in(10 * w + i))
                    own.opt_out(opt_out(999))  # everyone also opts the same person out
            except Exception as e:  # noqa: BLE001 (any failure is the test's finding)
                errors.append(e)

    def checkpoints() -> None:
        with ConsentLedger.open(db, key_file=key_file) as own:
            start.wait()
            try:
                while not done.is_set():
                    own.checkpoint()
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    signer = threading.Thread(target=checkpoints)
    for thread in [*threads, signer]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    signer.join()
    final = ledger.checkpoint()

    assert errors == []
    assert final.size == events(ledger)
    assert opted_out(ledger, 999) == writers * each
    assert_one_chain(ledger)
