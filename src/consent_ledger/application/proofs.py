"""Proofs: the log signed, and shown to be as signed, with what decisions rest on.

A thin service over :class:`~consent_ledger.evidence.integrity.TamperEvidence` (the Merkle
leaves and checkpoints kept beside the log) and
:func:`~consent_ledger.evidence.derived.check_derived` (the lookups and views compared with
the log). It holds the ledger's signing key, derived from its master key, and loads the
evidence code only when a checkpoint or a verification is asked for.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, TypedDict

from consent_ledger.storage.view_database import open_view_database

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from consent_ledger.evidence.checkpoint import VerifierKey
    from consent_ledger.evidence.derived import ViewCheck
    from consent_ledger.evidence.integrity import SignedCheckpoint, TamperEvidence
    from consent_ledger.evidence.verification import Verification
    from consent_ledger.privacy.keys import KeyRing
    from consent_ledger.storage.log import EventLog


class VerifyOptions(TypedDict, total=False):
    """What a verification checks beyond the keys it trusts (see :meth:`Proofs.verify`)."""

    since: Sequence[str]
    progress: Callable[[int], None] | None
    workers: int | None
    thorough: bool
    views: Sequence[ViewCheck]
    log_only: bool


class Proofs:
    """Signs checkpoints of a ledger's log and verifies the log and what is derived from it."""

    def __init__(self, log: Callable[[], EventLog], keyring: KeyRing) -> None:
        """Work on the ledger's ``log`` (asked for when first needed) with its ``keyring``."""
        self._log = log
        self._keyring = keyring
        self._evidence: TamperEvidence | None = None

    @property
    def tamper_evidence(self) -> TamperEvidence:
        """The Merkle leaves and signed checkpoints of the log, kept in the ledger's database."""
        if self._evidence is None:
            log = self._log()
            # Imported here: a ledger that never checkpoints does not load it.
            from consent_ledger.evidence.integrity import TamperEvidence  # noqa: PLC0415

            self._evidence = TamperEvidence(log, open_view_database(log.store))
        return self._evidence

    def close(self) -> None:
        """Close the database connection the evidence holds, if it was opened."""
        if self._evidence is not None:
            self._evidence.database.close()
            self._evidence = None

    def checkpoint(self, *, workers: int | None = 1) -> SignedCheckpoint:
        """Cover every event recorded so far by a new checkpoint signed with the ledger's key.

        Returns the latest checkpoint unchanged when nothing was recorded since. Writers
        are not held up while it hashes (see :meth:`TamperEvidence.checkpoint`).
        ``workers``: processes that hash leaves on SQLite (``None``: one per CPU when
        many events are new; see :func:`consent_ledger.evidence.leaves.leaf_pages`).
        """
        return self.tamper_evidence.checkpoint(self._signing_key(), workers=workers)

    def verifier_key(self) -> VerifierKey:
        """The public key that verifies this ledger's checkpoints: give it to auditors."""
        return self.tamper_evidence.verifier_key(self._signing_key())

    def verify(  # noqa: PLR0913 (one argument per thing to check)
        self,
        keys: Sequence[VerifierKey] | None = None,
        *,
        since: Sequence[str] = (),
        progress: Callable[[int], None] | None = None,
        workers: int | None = 1,
        thorough: bool = False,
        views: Sequence[ViewCheck] = (),
        log_only: bool = False,
    ) -> Verification:
        """Check every stored event against every signed checkpoint, then what is derived.

        ``keys``: the verifier keys to trust (default: this ledger's own, from its master
        key; an auditor passes the key they were given). ``since``: signed checkpoints
        kept outside the ledger, which the log must extend and the ledger must still hold:
        a log rewritten and signed again by the key's holder fails against them.
        ``workers``: as :meth:`checkpoint`. ``thorough``: also compare every kept leaf
        (see :meth:`~consent_ledger.evidence.integrity.TamperEvidence.verify`).

        Once the log is shown as signed, what decisions rest on is compared with it
        (:func:`~consent_ledger.evidence.derived.check_derived`): the ledger's lookups
        (with this ledger's master key) and each of ``views``
        (the projections package's ``view_checks`` makes them). ``log_only``: skip that.
        ``progress`` is called with the events read per page, by each pass over the log.
        """
        trusted = list(keys) if keys is not None else [self.verifier_key()]
        verification = self.tamper_evidence.verify(
            trusted, since=since, progress=progress, workers=workers, thorough=thorough
        )
        if log_only or not verification.ok:  # a log not as signed: nothing to compare with
            return verification
        # Imported here: like tamper evidence, only a verify loads it.
        from consent_ledger.evidence.derived import check_derived  # noqa: PLC0415

        report = check_derived(self._log(), self._keyring, views, progress=progress)
        problem = None
        if report.problems:
            more = len(report.problems) - 1 + report.unreported
            problem = report.problems[0] + (f" (and {more:,} more)" if more else "")
        return dataclasses.replace(verification, problem=problem, derived=report)

    def _signing_key(self) -> Ed25519PrivateKey:
        return self._keyring.checkpoint_key(self._log().ledger_id)
