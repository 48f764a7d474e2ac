"""The consent ledger: the one entry point services import, and the faces (CLI, HTTP) call.

Open a ledger with :meth:`ConsentLedger.open` (or make one with :meth:`ConsentLedger.create`),
then record consent with typed commands and read it back::

    ledger = ConsentLedger.open("consent-ledger.db")
    ledger.opt_in(OptIn(business_id="acme", identifier="+447700900123",
                        categories=("offers",), notice="web-form@2", method="web-form"))
    ledger.get_status("+447700900123", business_id="acme")

``ConsentLedger`` is a thin front. It opens the store and checks the key, and hands each
call to the application service that owns the job (:mod:`consent_ledger.application`):
the catalogue (businesses, notices, templates), recording (consent commands), signals
(webhook items taken once, identifiers linked), queries (status, history) and sending
decisions (check, audience). The services share one :class:`~.application.books.Books`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Unpack, cast
from uuid import UUID

from eventsourcing.application import Application
from uuid_utils.compat import uuid7

from consent_ledger.application.books import Books
from consent_ledger.application.proofs import Proofs
from consent_ledger.exceptions import NotALedgerError
from consent_ledger.privacy.key_location import (
    LEDGER_FORMAT,
    KeyLocation,
    check_key,
    find_key,
    new_key,
)
from consent_ledger.privacy.keys import KeyRing, MasterKey, write_key_file
from consent_ledger.storage.log import EventLog
from consent_ledger.storage.mapper import OrjsonTranscoder, PydanticMapper
from consent_ledger.storage.sqlite import SQLiteLedgerRecorder
from consent_ledger.storage.stores import Store, parse_store

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from eventsourcing.persistence import Mapper
    from eventsourcing.utils import EnvType

    from consent_ledger.application.catalogue import (
        AnnouncedChange,
        BusinessInfo,
        Catalogue,
        CategoryChange,
    )
    from consent_ledger.application.decisions import CheckOptions, SendingDecisions, SendOptions
    from consent_ledger.application.proofs import VerifyOptions
    from consent_ledger.application.queries import Queries
    from consent_ledger.application.recording import Recorded, Recording
    from consent_ledger.application.sends import SendLog, SendOutcome
    from consent_ledger.application.signals import Signals
    from consent_ledger.evidence.checkpoint import VerifierKey
    from consent_ledger.evidence.integrity import SignedCheckpoint, TamperEvidence
    from consent_ledger.evidence.verification import Verification
    from consent_ledger.model.commands import (
        ChangeCategories,
        ConfirmOptIn,
        DefineCategory,
        Evidence,
        OptIn,
        OptOut,
        PublishNotice,
        RecordPlatformPreference,
        RecordSend,
        RecordSignal,
        RegisterBusiness,
    )
    from consent_ledger.model.history import SubjectHistory, SubjectStatus
    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.notice import NoticeVersion
    from consent_ledger.model.taxonomy import Category, TemplateCategory
    from consent_ledger.model.template import Template
    from consent_ledger.model.values import Provenance
    from consent_ledger.sending.eligibility import (
        Candidate,
        CandidatePage,
        Decision,
        Recipient,
        RecipientPage,
    )
    from consent_ledger.storage.recorder import LedgerRecorder
    from consent_ledger.whatsapp.keywords import Keywords
    from consent_ledger.whatsapp.report import IngestReport

__all__ = ["ConsentLedger", "KeyLocation"]


class ConsentLedger(Application[UUID]):
    """An append-only ledger of consent for business messaging."""

    name = "ConsentLedger"
    env: ClassVar[dict[str, str]] = {}

    def __init__(
        self, env: EnvType | None = None, *, keyring: KeyRing, store: Store | None = None
    ) -> None:
        """Open the event store named by ``env`` with the keys of ``keyring``.

        Prefer :meth:`open` and :meth:`create`, which find the store and the key and check
        that they belong together.
        """
        super().__init__(env)
        self.store = store
        self._keyring = keyring
        self.books = Books(self, keyring)
        self.proofs = Proofs(lambda: self.event_log, keyring)

    # The services, each made (its module imported) when first used: a process that only
    # checks sends loads the decisions, not the recording, the catalogue or their models.

    @cached_property
    def catalogue(self) -> Catalogue:
        """Businesses, notices, templates (:class:`~.application.catalogue.Catalogue`)."""
        from consent_ledger.application.catalogue import Catalogue  # noqa: PLC0415

        return Catalogue(self.books)

    @cached_property
    def recording(self) -> Recording:
        """Consent commands (:class:`~.application.recording.Recording`)."""
        from consent_ledger.application.recording import Recording  # noqa: PLC0415

        return Recording(self.books, self.catalogue)

    @cached_property
    def signals(self) -> Signals:
        """Webhook items taken once, identifiers linked (:class:`~.application.signals.Signals`)."""
        from consent_ledger.application.signals import Signals  # noqa: PLC0415

        return Signals(self.books, self.catalogue, self.recording)

    @cached_property
    def queries(self) -> Queries:
        """Status and history (:class:`~.application.queries.Queries`)."""
        from consent_ledger.application.queries import Queries  # noqa: PLC0415

        return Queries(self.books, self.catalogue)

    @cached_property
    def sending(self) -> SendingDecisions:
        """Checks and audiences (:class:`~.application.decisions.SendingDecisions`)."""
        from consent_ledger.application.decisions import SendingDecisions  # noqa: PLC0415

        # The catalogue late: only a check that names a template, or a category of the
        # business's own, needs it.
        return SendingDecisions(self.books, lambda: self.catalogue)

    @cached_property
    def sends(self) -> SendLog:
        """Sends recorded with their decisions (:class:`~.application.sends.SendLog`)."""
        from consent_ledger.application.sends import SendLog  # noqa: PLC0415

        return SendLog(self.books, lambda: self.catalogue, self.sending)

    def construct_mapper(self) -> Mapper[UUID]:
        """Events are pydantic models stored as JSON."""
        return PydanticMapper(transcoder=OrjsonTranscoder())

    def close(self) -> None:
        """Close the ledger's connections."""
        self.proofs.close()
        if isinstance(self.recorder, SQLiteLedgerRecorder):
            self.recorder.close_reader()
        super().close()

    @property
    def ledger_recorder(self) -> LedgerRecorder:
        """The recorder, with the ledger's key and lookup tables."""
        return cast("LedgerRecorder", self.recorder)

    # Opening and creating.

    @classmethod
    def create(
        cls,
        db: str | Path,
        *,
        key_file: str | Path | None = None,
        master_key: MasterKey | None = None,
        business: RegisterBusiness | None = None,
    ) -> tuple[ConsentLedger, KeyLocation]:
        """Create a ledger, its key material and optionally its default business.

        An SQLite ledger keeps its key in a file beside the database (mode 0600) unless
        ``key_file`` or ``CONSENT_LEDGER_KEY[_FILE]`` say otherwise; a PostgreSQL ledger
        needs ``key_file`` (created) or an existing key in ``CONSENT_LEDGER_KEY``.

        Raises:
            LedgerExistsError: a ledger or key file exists there already.
            MissingKeyError: a PostgreSQL ledger was given nowhere to keep its key.
        """
        store = parse_store(db)
        store.prepare_new()
        master, location = new_key(store, _path(key_file), master_key)
        ledger_id = str(uuid7())
        if location.file is not None:
            write_key_file(location.file, ledger_id, master)
        try:
            ledger = cls(env=store.env(create=True), keyring=KeyRing(master), store=store)
            ledger._start(ledger_id, business)
        except BaseException:
            store.remove()
            if location.file is not None:
                location.file.unlink(missing_ok=True)
            raise
        return ledger, location

    def _start(self, ledger_id: str, business: RegisterBusiness | None) -> None:
        """Write a new ledger's metadata, and register its default business."""
        self.ledger_recorder.write_meta(
            {
                "format": LEDGER_FORMAT,
                "ledger_id": ledger_id,
                "key_check": self._keyring.key_check(ledger_id),
                "created_at": datetime.now(UTC).isoformat(),
            }
        )
        if business is not None:
            self.register_business(business)
            self.ledger_recorder.write_meta({"default_business": business.business_id})

    @classmethod
    def open(
        cls,
        db: str | Path,
        *,
        key_file: str | Path | None = None,
        master_key: MasterKey | None = None,
    ) -> ConsentLedger:
        """Open an existing ledger with its master key (see :mod:`.privacy.key_location`).

        Raises:
            LedgerNotFoundError: there is no ledger at ``db``.
            NotALedgerError: ``db`` holds something else.
            MissingKeyError: no key was found.
            WrongKeyError: the key belongs to another ledger.
        """
        store = parse_store(db)
        store.check_is_ledger()
        key_ledger_id, master, location = find_key(store, _path(key_file), master_key)
        ledger = cls(env=store.env(create=False), keyring=KeyRing(master), store=store)
        try:
            meta = ledger.ledger_recorder.select_meta()
            check_key(meta, ledger._keyring, key_ledger_id, location)
        except BaseException:
            ledger.close()
            raise
        return ledger

    @property
    def event_log(self) -> EventLog:
        """The ledger's log, for views and replays (sharing this ledger's connections)."""
        if self.store is None:
            msg = "this ledger was not opened with ConsentLedger.open or create"
            raise NotALedgerError(msg)
        return EventLog(self.store, self.recorder)

    @property
    def default_business(self) -> str | None:
        """The business commands apply to when they name none (set by ``create``)."""
        return self.ledger_recorder.select_meta().get("default_business")

    # Tamper evidence (see Proofs).

    @property
    def tamper_evidence(self) -> TamperEvidence:
        """The Merkle leaves and signed checkpoints of the log (:class:`Proofs`)."""
        return self.proofs.tamper_evidence

    def checkpoint(self, *, workers: int | None = 1) -> SignedCheckpoint:
        """Sign a checkpoint of every event recorded so far (:meth:`Proofs.checkpoint`)."""
        return self.proofs.checkpoint(workers=workers)

    def verifier_key(self) -> VerifierKey:
        """The public key that verifies this ledger's checkpoints: give it to auditors."""
        return self.proofs.verifier_key()

    def verify(
        self, keys: Sequence[VerifierKey] | None = None, **checks: Unpack[VerifyOptions]
    ) -> Verification:
        """Check the log against every signed checkpoint, then what is derived from it.

        See :meth:`Proofs.verify` for ``since``, ``progress``, ``workers``, ``thorough``,
        ``views`` and ``log_only``.
        """
        return self.proofs.verify(keys, **checks)

    def _signing_key(self) -> Ed25519PrivateKey:
        return self._keyring.checkpoint_key(self.event_log.ledger_id)

    # The catalogue: businesses, notices, templates (see Catalogue).

    def register_business(self, command: RegisterBusiness) -> BusinessInfo:
        """Register a business (:meth:`Catalogue.register_business`)."""
        return self.catalogue.register_business(command)

    def get_business(self, business_id: str) -> BusinessInfo:
        """A registered business (:meth:`Catalogue.get_business`)."""
        return self.catalogue.get_business(business_id)

    def define_category(self, command: DefineCategory) -> Category:
        """Define a category of a business's own (:meth:`Catalogue.define_category`)."""
        return self.catalogue.define_category(command)

    def retire_category(self, business_id: str, name: str) -> Category:
        """Retire a category the business defined (:meth:`Catalogue.retire_category`)."""
        return self.catalogue.retire_category(business_id, name)

    def list_categories(self, business_id: str) -> list[Category]:
        """The business's categories, built in and its own (:meth:`Catalogue.list_categories`)."""
        return self.catalogue.list_categories(business_id)

    def publish_notice(self, command: PublishNotice) -> NoticeVersion:
        """Publish the next version of a notice (:meth:`Catalogue.publish_notice`)."""
        return self.catalogue.publish_notice(command)

    def get_notice(
        self, business_id: str, notice_id: str, version: int | None = None
    ) -> NoticeVersion:
        """A published notice version, or the latest (:meth:`Catalogue.get_notice`)."""
        return self.catalogue.get_notice(business_id, notice_id, version)

    def list_notices(self, business_id: str) -> list[NoticeVersion]:
        """The latest version of each notice of a business (:meth:`Catalogue.list_notices`)."""
        return self.catalogue.list_notices(business_id)

    def list_notice_versions(self, business_id: str, notice_id: str) -> list[NoticeVersion]:
        """Every version of a notice (:meth:`Catalogue.list_notice_versions`)."""
        return self.catalogue.list_notice_versions(business_id, notice_id)

    def set_template_category(
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        **facts: Unpack[CategoryChange],
    ) -> bool:
        """Record a template's category from a moment on (see :class:`Catalogue`)."""
        return self.catalogue.set_template_category(business_id, name, language, category, **facts)

    def announce_template_category(
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        **facts: Unpack[AnnouncedChange],
    ) -> bool:
        """Record a change of category WhatsApp announced (see :class:`Catalogue`)."""
        return self.catalogue.announce_template_category(
            business_id, name, language, category, **facts
        )

    def template_category(
        self, business_id: str, name: str, language: str, *, at: datetime | None = None
    ) -> TemplateCategory | None:
        """The category a template is in at ``at`` (:meth:`Catalogue.template_category`)."""
        return self.catalogue.template_category(business_id, name, language, at=at)

    def template_changes(
        self, business_id: str, name: str, language: str
    ) -> list[Template.CategoryChanged]:
        """Every change of a template's category (:meth:`Catalogue.template_changes`)."""
        return self.catalogue.template_changes(business_id, name, language)

    # Recording consent (see Recording).

    def opt_in(self, command: OptIn) -> Recorded:
        """Record an opt-in, backed by the notice the person saw (:meth:`Recording.opt_in`)."""
        return self.recording.opt_in(command)

    def confirm_opt_in(self, command: ConfirmOptIn) -> Recorded:
        """Record the confirmation of a pending opt-in (:meth:`Recording.confirm_opt_in`)."""
        return self.recording.confirm_opt_in(command)

    def opt_out(self, command: OptOut) -> Recorded:
        """Record an opt-out. Never refused (:meth:`Recording.opt_out`)."""
        return self.recording.opt_out(command)

    def change_categories(self, command: ChangeCategories) -> Recorded:
        """Grant some categories and withdraw others (:meth:`Recording.change_categories`)."""
        return self.recording.change_categories(command)

    def record_platform_preference(self, command: RecordPlatformPreference) -> Recorded:
        """Record a WhatsApp marketing stop or resume; never refused (:class:`Recording`)."""
        return self.recording.record_platform_preference(command)

    # Signals from outside (see Signals).

    def record_once(
        self, command: OptIn | OptOut | RecordPlatformPreference | RecordSignal, *, signal: str
    ) -> Recorded | None:
        """Record ``command`` for a webhook item, at most once (:meth:`Signals.record_once`)."""
        return self.signals.record_once(command, signal=signal)

    def note_once(self, signal: str) -> bool:
        """Remember a signal that records no event (:meth:`Signals.note_once`)."""
        return self.signals.note_once(signal)

    def link_identifiers(
        self,
        business_id: str,
        identifiers: Sequence[Identifier],
        *,
        provenance: Provenance,
        evidence: Evidence | None = None,
    ) -> list[Identifier]:
        """Make identifiers find the one person some of them find (see :class:`Signals`)."""
        return self.signals.link_identifiers(
            business_id, identifiers, provenance=provenance, evidence=evidence
        )

    def ingest_whatsapp(
        self, payload: object, *, business_id: str, keywords: Keywords | None = None
    ) -> IngestReport:
        """Take a WhatsApp webhook body (see :mod:`consent_ledger.whatsapp.ingestion`)."""
        from consent_ledger.whatsapp.ingestion import ingest_whatsapp  # noqa: PLC0415 (parsers)

        return ingest_whatsapp(self, payload, business_id=business_id, keywords=keywords)

    # Queries (see Queries).

    def find_subject(self, identifier: Identifier | str, *, business_id: str) -> UUID | None:
        """The id of the person's consent record with a business, if they have one."""
        return self.queries.find_subject(identifier, business_id=business_id)

    def get_status(
        self,
        identifier: Identifier | str,
        *,
        business_id: str,
        at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> SubjectStatus:
        """A person's consent per channel, category and sender (:meth:`Queries.get_status`)."""
        return self.queries.get_status(
            identifier, business_id=business_id, at=at, known_at=known_at
        )

    def get_history(self, identifier: Identifier | str, *, business_id: str) -> SubjectHistory:
        """Every event of a person's consent record (:meth:`Queries.get_history`)."""
        return self.queries.get_history(identifier, business_id=business_id)

    def reveal_identifier(self, subject_id: UUID) -> str | None:
        """The identifier a person was first recorded under; None if erased (:class:`Queries`)."""
        return self.queries.reveal_identifier(subject_id)

    # Sends (see SendLog).

    def record_send(self, command: RecordSend, *, only_if_allowed: bool = False) -> SendOutcome:
        """Record a send with the decision it rests on, once per message id (:class:`SendLog`)."""
        return self.sends.record_send(command, only_if_allowed=only_if_allowed)

    # Sending decisions (see SendingDecisions).

    def check(
        self,
        identifier: Identifier | str,
        *,
        business_id: str,
        category: str,
        **options: Unpack[CheckOptions],
    ) -> Decision:
        """May a message of ``category`` go to this person now? (:meth:`SendingDecisions.check`)."""
        return self.sending.check(identifier, business_id=business_id, category=category, **options)

    def audience(
        self,
        candidates: Iterable[Candidate],
        *,
        business_id: str,
        category: str,
        **options: Unpack[SendOptions],
    ) -> Iterator[Recipient]:
        """Who of a view's candidates a message may go to (:meth:`SendingDecisions.audience`)."""
        return self.sending.audience(
            candidates, business_id=business_id, category=category, **options
        )

    def audience_pages(
        self,
        pages: Iterable[CandidatePage],
        *,
        business_id: str,
        category: str,
        **options: Unpack[SendOptions],
    ) -> Iterator[RecipientPage]:
        """:meth:`audience`, a page at a time (:meth:`SendingDecisions.audience_pages`)."""
        return self.sending.audience_pages(
            pages, business_id=business_id, category=category, **options
        )


def _path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None
