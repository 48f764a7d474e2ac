"""Verification: replaying the log against every signed checkpoint, and what it found.

:func:`verify_log` (what :meth:`TamperEvidence.verify
<consent_ledger.evidence.integrity.TamperEvidence.verify>` runs) recomputes every leaf from
the log, checks every checkpoint's signature and root, and names the first position where
the log departs from what was signed. The kept leaves serve only to name that position;
trust rests on the signed roots alone.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from consent_ledger.evidence.checkpoint import Checkpoint, CheckpointError, VerifierKey, open_note
from consent_ledger.evidence.leaves import LeafPage, leaf_pages
from consent_ledger.evidence.merkle import TreeBuilder
from consent_ledger.storage.log import BEFORE_ALL

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from consent_ledger.evidence.derived import DerivedReport
    from consent_ledger.evidence.integrity import SignedCheckpoint, TamperEvidence


@dataclass(frozen=True)
class Verification:
    """What :meth:`TamperEvidence.verify` found.

    ``problem`` is None when every checked event is exactly as checkpointed; otherwise it
    says what failed, and ``position`` names the first bad position when it can be named.
    """

    events: int
    checkpoints: int
    covered: int
    problem: str | None = None
    position: int | None = None
    derived: DerivedReport | None = None
    """What was found comparing derived state (lookups, views) with the log, if it was."""

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return self.problem is None

    @property
    def unchecked(self) -> int:
        """Events recorded after the latest checkpoint, which no signature covers yet."""
        return self.events - self.covered


def verify_log(  # noqa: PLR0913 (the options of TamperEvidence.verify)
    evidence: TamperEvidence,
    keys: Sequence[VerifierKey],
    *,
    since: Sequence[str],
    progress: Callable[[int], None] | None,
    workers: int | None,
    thorough: bool,
) -> Verification:
    """Check every stored event of ``evidence``'s log against every signed checkpoint.

    Args:
        evidence: The ledger's leaves and checkpoints.
        keys: The keys a checkpoint's signature must be by (one of them).
        since: Signed notes of checkpoints kept outside the ledger, which the log must
            extend too.
        progress: Called with the events read per page.
        workers: Processes that hash leaves on SQLite (see :func:`leaf_pages`).
        thorough: Compare every kept leaf, not only where a root does not match.

    Returns:
        What was found; see :meth:`TamperEvidence.verify
        <consent_ledger.evidence.integrity.TamperEvidence.verify>`.
    """
    own = evidence.checkpoints()
    heads: list[Checkpoint] = []
    for label, note in [(f"checkpoint {c.size}", c.note) for c in own] + [
        ("the kept checkpoint", note) for note in since
    ]:
        try:
            head = open_note(note, keys)
        except CheckpointError as e:
            return Verification(0, len(own), 0, f"{label}: {e}")
        if head.origin != evidence.origin:
            problem = f"{label} is for {head.origin}, not {evidence.origin}"
            return Verification(0, len(own), 0, problem)
        heads.append(head)
    covered = own[-1].size if own else 0
    outside = frozenset(heads[len(own) :]) - frozenset(heads[: len(own)])  # the auditor's
    heads.sort(key=lambda head: head.size)
    replay = functools.partial(
        _replay, evidence, heads, covered, len(own), workers=workers, outside=outside
    )
    result = replay(progress, compare=thorough)
    if not result.ok and not thorough:  # where did it change? ask the kept leaves
        result = replay(None, compare=True)
    if result.ok and outside:
        return dataclasses.replace(result, problem=_not_kept(min(outside, key=_size), own))
    return result


def _size(checkpoint: Checkpoint) -> int:
    return checkpoint.size


def _not_kept(head: Checkpoint, own: Sequence[SignedCheckpoint]) -> str:
    """A kept checkpoint the log extends, but the ledger does not hold: its table was altered.

    Every checkpoint the ledger signs is kept in ``ledger_checkpoints``; a note given with
    ``--since`` that is not there (same size and root) was removed, or replaced by one of
    another root. The log still hashing to it does not make the table whole.
    """
    if not own:
        held = "the ledger holds no checkpoint at all"
    else:
        plural = "" if len(own) == 1 else "s"
        held = f"the ledger holds {len(own)} checkpoint{plural}, up to {own[-1].size} events"
    return (
        f"your kept checkpoint {head.size} is missing from the ledger's checkpoints "
        f"(ledger_checkpoints; {held}): they were emptied or altered, though the log "
        "still matches it"
    )


def _replay(  # noqa: PLR0913 (one pass needs all of these)
    evidence: TamperEvidence,
    heads: list[Checkpoint],
    covered: int,
    checkpoints: int,
    progress: Callable[[int], None] | None,
    *,
    workers: int | None,
    outside: frozenset[Checkpoint],
    compare: bool,
) -> Verification:
    replay = _Replay(
        evidence, heads, covered, progress, checkpoints, outside=outside, compare=compare
    )
    with leaf_pages(evidence.log, BEFORE_ALL, workers=workers) as pages:
        return replay.run(pages)


class _Replay:
    """One pass over the log: leaves recomputed, compared with the kept ones, roots checked."""

    def __init__(  # noqa: PLR0913 (one pass needs all of these)
        self,
        evidence: TamperEvidence,
        heads: list[Checkpoint],
        covered: int,
        progress: Callable[[int], None] | None,
        checkpoints: int,
        *,
        outside: frozenset[Checkpoint],
        compare: bool,
    ) -> None:
        self.evidence = evidence
        self.compare = compare
        self.due = collections.deque(heads)  # by size: the next to check first
        self.covered = covered
        self.progress = progress
        self.checkpoints = checkpoints
        self.tree = TreeBuilder()
        self.first_difference: tuple[int, str] | None = None
        self.outside = outside  # checkpoints an auditor kept, not this ledger's own

    def run(self, pages: Iterator[LeafPage]) -> Verification:
        failed = self._check_due()  # a checkpoint of the empty log, if any
        while failed is None and (page := next(pages, None)) is not None:
            failed = self._take(page)
            if self.progress is not None:
                self.progress(len(page.positions))
        if failed is None and self.due:
            failed = self._ended_early()
        if failed is not None:
            return self._failed(failed)
        if self.first_difference is not None:  # the log is as signed: the index is not
            position, what = self.first_difference
            problem = (
                f"position {position} {_AS_THE_INDEX_HAS_IT[what]}, though the log matches "
                "every checkpoint: the leaf index was altered"
            )
            return self._result(problem, position)
        return self._result(None, None)

    def _take(self, page: LeafPage) -> Checkpoint | None:
        """Add a page of leaves to the tree; return a checkpoint whose root it misses."""
        positions, digests, root = page
        if self.compare and self.tree.size < self.covered and self.first_difference is None:
            self._compare_page(positions, digests)
        count, size = len(digests), self.tree.size
        if root is not None and size % count == 0 and not self._due_within(size, size + count):
            self.tree.append_subtree(root, count)  # a perfect subtree: one step, not count
            return self._check_due()
        start = 0
        while start < len(digests):  # up to each signed size in the page, then the rest
            end = len(digests)
            if self.due and self.due[0].size - self.tree.size <= end - start:
                end = start + self.due[0].size - self.tree.size
            self.tree.extend(digests[start:end])
            start = end
            failed = self._check_due()
            if failed is not None:
                return failed
        return None

    def _due_within(self, low: int, high: int) -> bool:
        """Whether a checkpoint's size falls strictly inside (low, high)."""
        return bool(self.due) and low < self.due[0].size < high

    def _compare_page(self, positions: list[int], digests: list[bytes]) -> None:
        """Compare a page with the kept leaves in bulk; one by one only where they part."""
        count = min(len(positions), self.covered - self.tree.size)
        kept = self.evidence.kept_leaves(self.tree.size, count)
        if [p for p, _ in kept] == positions[:count] and [d for _, d in kept] == digests[:count]:
            return
        for index, (position, digest) in enumerate(zip(positions[:count], digests, strict=False)):
            self._compare(position, digest, kept[index] if index < len(kept) else None)
            if self.first_difference is not None:
                return

    def _check_due(self) -> Checkpoint | None:
        """Check the checkpoints of the tree's current size; return one that fails."""
        while self.due and self.due[0].size == self.tree.size:
            head = self.due.popleft()
            if self.tree.root() != head.root:
                return head
        return None

    def _ended_early(self) -> Checkpoint:
        """The log ends before a signed size: events were deleted."""
        if self.first_difference is None:
            missing = self.evidence.kept_leaves(self.tree.size, 1)
            if missing:
                self.first_difference = (missing[0][0], "was deleted from the log")
        return self.due[0]

    def _compare(self, position: int, digest: bytes, kept: tuple[int, bytes] | None) -> None:
        """Note the first place where the log and the kept leaves part."""
        if kept is None:
            self.first_difference = (position, "is missing")
        elif kept[0] < position:
            self.first_difference = (kept[0], "was deleted from the log")
        elif kept[0] > position:
            self.first_difference = (position, "was not in the log when it was checkpointed")
        elif kept[1] != digest:
            self.first_difference = (position, "differs from the event that was checkpointed")

    def _failed(self, head: Checkpoint) -> Verification:
        """The log does not hash to ``head``'s signed root: say where, if the leaves can."""
        name = "your kept checkpoint" if head in self.outside else "checkpoint"
        what = f"the log does not match {name} {head.size} (signed root differs)"
        if self.first_difference is not None and self._kept_leaves_match(head):
            position, change = self.first_difference
            return self._result(f"position {position} {change}; {what}", position)
        return self._result(f"{what}; the leaf index cannot name the position", None)

    def _kept_leaves_match(self, head: Checkpoint) -> bool:
        """Whether the kept leaves hash to ``head``'s signed root (so they can be trusted)."""
        tree = TreeBuilder()
        tree.extend(digest for _, digest in self.evidence.stored_leaves(head.size))
        return tree.size == head.size and tree.root() == head.root

    def _result(self, problem: str | None, position: int | None) -> Verification:
        events = self.tree.size  # read so far: all of them, unless a check failed
        return Verification(events, self.checkpoints, self.covered, problem, position)


_AS_THE_INDEX_HAS_IT = {  # a first difference, said of the leaf index when the log is intact
    "is missing": "has no entry in the leaf index",
    "was not in the log when it was checkpointed": "has no entry in the leaf index",
    "was deleted from the log": "is in the leaf index but not in the log",
    "differs from the event that was checkpointed": "has another hash in the leaf index",
}
