"""The consent ledger: the application services import, and the CLI is a face of.

Open a ledger with :meth:`ConsentLedger.open` (or make one with :meth:`ConsentLedger.create`),
then record consent with typed commands and read it back::

    ledger = ConsentLedger.open("consent-ledger.db")
    ledger.opt_in(OptIn(business_id="acme", identifier="+447700900123",
                        categories=("offers",), notice="web-form@2", method="web-form"))
    ledger.get_status("+447700900123", business_id="acme")

Commands load the subject's record, call one method on it and save; a write that loses a
race with another writer is retried on fresh state, so no event is lost.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper
from pydantic import BaseModel
from uuid_utils.compat import uuid7

from consent_ledger.exceptions import (
    BusinessExistsError,
    BusinessNotFoundError,
    ConcurrentUpdateError,
    ConsentRuleError,
    IdentityConflictError,
    InvalidInputError,
    KeyMaterialError,
    MissingKeyError,
    NotALedgerError,
    NoticeNotFoundError,
    SubjectNotFoundError,
    WrongKeyError,
)
from consent_ledger.model.aggregate import Aggregate
from consent_ledger.model.business import Business
from consent_ledger.model.commands import OptIn, OptOut, RecordPlatformPreference, RecordSignal
from consent_ledger.model.consent_record import SERVICE_WINDOW, ConsentRecord
from consent_ledger.model.history import SubjectHistory, SubjectStatus, history_entry
from consent_ledger.model.identifiers import Identifier, IdentifierKind
from consent_ledger.model.notice import Notice, NoticeVersion
from consent_ledger.model.status import (
    END_OF_TIME,
    ConsentState,
    PlatformState,
    base_state,
    platform_states,
    visible,
)
from consent_ledger.model.taxonomy import Channel, TemplateCategory
from consent_ledger.model.template import Template
from consent_ledger.model.values import utc_text
from consent_ledger.privacy.keys import (
    DataKeyCache,
    KeyRing,
    MasterKey,
    read_key_file,
    write_key_file,
)
from consent_ledger.sending.eligibility import (
    Candidate,
    CandidatePage,
    CheckRequest,
    ConsentSource,
    Decision,
    Policy,
    Reason,
    Recipient,
    RecipientPage,
    check_request,
    decide,
    get_policy,
    stopping,
    template_denial,
)
from consent_ledger.storage.log import EventLog
from consent_ledger.storage.mapper import OrjsonTranscoder, PydanticMapper
from consent_ledger.storage.recorder import LedgerRecorder, NewSubject
from consent_ledger.storage.sqlite import SQLiteLedgerRecorder
from consent_ledger.storage.stores import Store, parse_store
from consent_ledger.storage.view_database import PAGE_ROWS, open_view_database

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from eventsourcing.utils import EnvType

    from consent_ledger.evidence.checkpoint import VerifierKey
    from consent_ledger.evidence.integrity import SignedCheckpoint, TamperEvidence
    from consent_ledger.evidence.verification import Verification
    from consent_ledger.model.commands import (
        ChangeCategories,
        ConfirmOptIn,
        ConsentCommand,
        Evidence,
        PublishNotice,
        RegisterBusiness,
    )
    from consent_ledger.model.values import Provenance, Sealed
    from consent_ledger.privacy.keys import DataKey
    from consent_ledger.whatsapp.ingestion import IngestReport
    from consent_ledger.whatsapp.keywords import Keywords

LEDGER_FORMAT = "consent-ledger/1"
KEY_ENV = "CONSENT_LEDGER_KEY"
KEY_FILE_ENV = "CONSENT_LEDGER_KEY_FILE"
MAX_ATTEMPTS = 10
BACKOFF_SECONDS = 0.002  # doubled after each lost race, with jitter, up to 0.25 s

TAggregate = TypeVar("TAggregate", bound=Aggregate)
T = TypeVar("T")
Seal = Callable[[Any, str], "Sealed | None"]


@dataclass(frozen=True)
class KeyLocation:
    """Where a ledger's master key is kept (a file, or an environment variable)."""

    file: Path | None
    env_var: str | None = None

    def __str__(self) -> str:
        """A phrase naming the place."""
        if self.file is not None:
            return f"key file {self.file}"
        return f"environment variable {self.env_var}"


@dataclass(frozen=True)
class Recorded:
    """What a consent command wrote: the subject, the event and when it was recorded."""

    subject_id: UUID
    version: int
    event_type: str
    recorded_at: datetime
    new_subject: bool


@dataclass(frozen=True)
class BusinessInfo:
    """A registered business."""

    business_id: str
    display_name: str
    notice_ids: tuple[str, ...]


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
        self.store = store
        self._keyring = keyring
        self._data_keys = DataKeyCache()
        self._tamper_evidence: TamperEvidence | None = None
        self._signals_ready = False
        super().__init__(env)

    def construct_mapper(self) -> Mapper[UUID]:
        """Events are pydantic models stored as JSON."""
        return PydanticMapper(transcoder=OrjsonTranscoder())

    def close(self) -> None:
        """Close the ledger's connections."""
        if self._tamper_evidence is not None:
            self._tamper_evidence.database.close()
            self._tamper_evidence = None
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
        key_file: Path | None = None,
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
        master, location = _new_key(store, key_file, master_key)
        ledger_id = str(uuid7())
        if location.file is not None:
            write_key_file(location.file, ledger_id, master)
        try:
            ledger = cls(env=store.env(create=True), keyring=KeyRing(master), store=store)
            ledger.ledger_recorder.write_meta(
                {
                    "format": LEDGER_FORMAT,
                    "ledger_id": ledger_id,
                    "key_check": ledger._keyring.key_check(ledger_id),
                    "created_at": datetime.now(UTC).isoformat(),
                }
            )
            if business is not None:
                ledger.register_business(business)
                ledger.ledger_recorder.write_meta({"default_business": business.business_id})
        except BaseException:
            store.remove()
            if location.file is not None:
                location.file.unlink(missing_ok=True)
            raise
        return ledger, location

    @classmethod
    def open(
        cls, db: str | Path, *, key_file: Path | None = None, master_key: MasterKey | None = None
    ) -> ConsentLedger:
        """Open an existing ledger with its master key.

        The key is, in order: ``master_key``; ``key_file``; ``CONSENT_LEDGER_KEY`` (base64);
        ``CONSENT_LEDGER_KEY_FILE``; for SQLite, the key file beside the database.

        Raises:
            LedgerNotFoundError: there is no ledger at ``db``.
            NotALedgerError: ``db`` holds something else.
            MissingKeyError: no key was found.
            WrongKeyError: the key belongs to another ledger.
        """
        store = parse_store(db)
        store.check_is_ledger()
        key_ledger_id, master, location = _find_key(store, key_file, master_key)
        ledger = cls(env=store.env(create=False), keyring=KeyRing(master), store=store)
        try:
            ledger._check_key(key_ledger_id, location)
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _check_key(self, key_ledger_id: str | None, location: KeyLocation | None) -> None:
        meta = self.ledger_recorder.select_meta()
        if meta.get("format") != LEDGER_FORMAT:
            msg = (
                f"this ledger has format {meta.get('format')!r}; this version reads {LEDGER_FORMAT}"
            )
            raise NotALedgerError(msg)
        ledger_id = meta["ledger_id"]
        where = f" from {location}" if location else ""
        if key_ledger_id is not None and key_ledger_id != ledger_id:
            msg = f"the key{where} belongs to ledger {key_ledger_id}, not to this one ({ledger_id})"
            raise WrongKeyError(msg)
        if self._keyring.key_check(ledger_id) != meta["key_check"]:
            msg = f"the master key{where} does not open this ledger ({ledger_id})"
            raise WrongKeyError(msg)

    @property
    def event_log(self) -> EventLog:
        """The ledger's log, for views and replays (sharing this ledger's connections)."""
        if self.store is None:
            msg = "this ledger was not opened with ConsentLedger.open or create"
            raise NotALedgerError(msg)
        return EventLog(self.store, self.recorder)

    # Tamper evidence.

    @property
    def tamper_evidence(self) -> TamperEvidence:
        """The Merkle leaves and signed checkpoints of the log, kept in the ledger's database."""
        if self._tamper_evidence is None:
            log = self.event_log
            # Imported here: a ledger that never checkpoints does not load it.
            from consent_ledger.evidence.integrity import TamperEvidence  # noqa: PLC0415

            self._tamper_evidence = TamperEvidence(log, open_view_database(log.store))
        return self._tamper_evidence

    def checkpoint(self, *, workers: int | None = 1) -> SignedCheckpoint:
        """Cover every event recorded so far by a new checkpoint signed with the ledger's key.

        Returns the latest checkpoint unchanged when nothing was recorded since.
        ``workers``: processes that hash leaves on SQLite (``None``: one per CPU when
        many events are new; see :func:`consent_ledger.evidence.integrity.leaf_pages`).
        """
        return self.tamper_evidence.checkpoint(self._signing_key(), workers=workers)

    def verifier_key(self) -> VerifierKey:
        """The public key that verifies this ledger's checkpoints: give it to auditors."""
        return self.tamper_evidence.verifier_key(self._signing_key())

    def verify(
        self,
        keys: Sequence[VerifierKey] | None = None,
        *,
        since: Sequence[str] = (),
        progress: Callable[[int], None] | None = None,
        workers: int | None = 1,
        thorough: bool = False,
    ) -> Verification:
        """Check every stored event against every signed checkpoint.

        ``keys``: the verifier keys to trust (default: this ledger's own, from its master
        key; an auditor passes the key they were given). ``since``: signed checkpoints
        kept outside the ledger, which the log must extend: a log rewritten and signed
        again by the key's holder fails against them. ``workers``: processes that hash
        leaves on SQLite (``None``: one per CPU for a large log; see
        :func:`consent_ledger.evidence.integrity.leaf_pages`). ``thorough``: also compare every
        kept leaf (see :meth:`~consent_ledger.evidence.integrity.TamperEvidence.verify`).
        """
        trusted = list(keys) if keys is not None else [self.verifier_key()]
        return self.tamper_evidence.verify(
            trusted, since=since, progress=progress, workers=workers, thorough=thorough
        )

    def _signing_key(self) -> Ed25519PrivateKey:
        return self._keyring.checkpoint_key(self.event_log.ledger_id)

    @property
    def default_business(self) -> str | None:
        """The business commands apply to when they name none (set by ``create``)."""
        return self.ledger_recorder.select_meta().get("default_business")

    # Businesses and notices.

    def register_business(self, command: RegisterBusiness) -> BusinessInfo:
        """Register a business.

        Raises:
            BusinessExistsError: the id is taken.
        """
        business = Business.register(command.business_id, command.display_name)
        try:
            self.save(business)
        except IntegrityError:
            msg = f"business {command.business_id!r} is registered already"
            raise BusinessExistsError(msg) from None
        return _business_info(business)

    def get_business(self, business_id: str) -> BusinessInfo:
        """A registered business.

        Raises:
            BusinessNotFoundError: none is registered under ``business_id``.
        """
        return _business_info(self._get_business(business_id))

    def _get_business(self, business_id: str) -> Business:
        business = self._find(Business, Business.create_id(business_id))
        if business is None:
            msg = (
                f"no business {business_id!r} in this ledger; register it with: "
                f"consent-ledger business register {business_id} --name NAME"
            )
            raise BusinessNotFoundError(msg)
        return business

    def publish_notice(self, command: PublishNotice) -> NoticeVersion:
        """Publish the next version of a notice (version 1 creates it).

        Raises:
            BusinessNotFoundError: the business is not registered.
            NoticeRuleError: the text does not name the business.
        """
        for attempt in range(MAX_ATTEMPTS):
            _back_off(attempt)
            business = self._get_business(command.business_id)
            notice_id = Notice.create_id(command.business_id, command.notice_id)
            notice = self._find(Notice, notice_id)
            if notice is None:
                notice = Notice.register(command.business_id, command.notice_id)
                business.add_notice(command.notice_id)
            version = notice.publish(
                business,
                language=command.language,
                channel=command.channel,
                categories=command.categories,
                text=command.text,
                policy_url=command.policy_url,
            )
            try:
                self.save(notice, business)
            except IntegrityError:
                continue
            return version
        what = f"notice {command.notice_id!r}"
        raise _conflict(what)

    def get_notice(
        self, business_id: str, notice_id: str, version: int | None = None
    ) -> NoticeVersion:
        """A published notice version, or its latest version when ``version`` is None.

        Raises:
            NoticeNotFoundError: the notice or the version does not exist.
        """
        notice = self._find(Notice, Notice.create_id(business_id, notice_id))
        if notice is None:
            msg = f"business {business_id!r} has published no notice {notice_id!r}"
            raise NoticeNotFoundError(msg)
        return notice.get_version(version)

    def list_notices(self, business_id: str) -> list[NoticeVersion]:
        """The latest version of each notice of a business, in the order first published.

        Raises:
            BusinessNotFoundError: the business is not registered.
        """
        business = self._get_business(business_id)
        return [self.get_notice(business_id, notice_id) for notice_id in business.notice_ids]

    def list_notice_versions(self, business_id: str, notice_id: str) -> list[NoticeVersion]:
        """Every version of a notice, oldest first.

        Raises:
            NoticeNotFoundError: the notice does not exist.
        """
        notice = self._find(Notice, Notice.create_id(business_id, notice_id))
        if notice is None:
            msg = f"business {business_id!r} has published no notice {notice_id!r}"
            raise NoticeNotFoundError(msg)
        return list(notice.versions)

    # Consent.

    def opt_in(self, command: OptIn) -> Recorded:
        """Record an opt-in, backed by the notice the person saw.

        Raises:
            NoticeNotFoundError: the notice (version) was never published.
            NoticeRuleError: the notice does not cover the channel or categories.
        """
        return self._record_change(command, self._opting_in(command))

    def _opting_in(self, command: OptIn) -> Change:
        notice = self.get_notice(command.business_id, *command.notice)

        def change(record: ConsentRecord, seal: Seal) -> None:
            record.opt_in(
                notice,
                channel=command.channel,
                categories=command.categories,
                sender=command.sender,
                provenance=command.provenance(),
                expires_at=command.expires_at,
                awaiting_confirmation=command.awaiting_confirmation,
                legal_basis=command.legal_basis,
                jurisdiction=command.jurisdiction,
                evidence=seal(command.evidence, "evidence"),
            )

        return change

    def confirm_opt_in(self, command: ConfirmOptIn) -> Recorded:
        """Record the confirmation of an opt-in that awaited it (double opt-in).

        Raises:
            SubjectNotFoundError: the person has no consent record.
            ConsentRuleError: nothing awaited confirmation.
        """
        self._require_subject(command.business_id, command.identifier)

        def change(record: ConsentRecord, seal: Seal) -> None:
            record.confirm_opt_in(
                channel=command.channel,
                categories=command.categories,
                sender=command.sender,
                provenance=command.provenance(),
                evidence=seal(command.evidence, "evidence"),
            )

        return self._record_change(command, change)

    def opt_out(self, command: OptOut) -> Recorded:
        """Record an opt-out. Never refused: a person with no record gets one."""
        return self._record_change(command, _opting_out(command))

    def record_platform_preference(self, command: RecordPlatformPreference) -> Recorded:
        """Record a marketing stop (or resume) the person made on WhatsApp. Never refused."""
        return self._record_change(command, _preferring(command))

    # Signals from outside (webhooks), each recorded at most once.

    def record_once(
        self, command: OptIn | OptOut | RecordPlatformPreference | RecordSignal, *, signal: str
    ) -> Recorded | None:
        """Record ``command`` for an external signal (a webhook item), at most once.

        ``signal`` names the signal (a WhatsApp message id, say); the ledger keeps only a
        keyed hash of it, written in the same transaction as the events, so a signal
        replayed (a webhook delivered twice) records nothing. Returns None then.

        Raises:
            NoticeNotFoundError: as :meth:`opt_in`.
            NoticeRuleError: as :meth:`opt_in`.
        """
        key = self._signal_key(signal)
        if self.ledger_recorder.is_ingested(key):
            return None
        if isinstance(command, OptIn):
            change = self._opting_in(command)
        elif isinstance(command, OptOut):
            change = _opting_out(command)
        elif isinstance(command, RecordSignal):
            change = _signalling(command)
        elif isinstance(command, RecordPlatformPreference):
            change = _preferring(command)
        else:
            msg = f"record_once takes a consent command, not a {type(command).__name__}"
            raise TypeError(msg)
        return self._record_consent(command, change, signal=key)

    def link_identifiers(
        self,
        business_id: str,
        identifiers: Sequence[Identifier],
        *,
        provenance: Provenance,
        evidence: Evidence | None = None,
    ) -> list[Identifier]:
        """Make every one of ``identifiers`` find the person some of them already find.

        Each identifier not yet linked gets an ``IdentifierLinked`` event (sealed, with the
        evidence) and a lookup, in one transaction. Returns the identifiers linked now;
        none when nobody is known by any of them.

        Raises:
            IdentityConflictError: they already find two different people (never merged
                automatically: a person decides that).
        """
        self._get_business(business_id)
        for attempt in range(MAX_ATTEMPTS):
            _back_off(attempt)
            found = {
                identifier: (lookup, self.ledger_recorder.find_subject(lookup))
                for identifier in identifiers
                for lookup in [self._keyring.lookup(business_id, identifier)]
            }
            people = {subject for _, subject in found.values() if subject is not None}
            if len(people) > 1:
                named = ", ".join(str(identifier) for identifier in identifiers)
                msg = f"{named} already belong to {len(people)} different people: not linked"
                raise IdentityConflictError(msg)
            missing = [(i, lookup) for i, (lookup, subject) in found.items() if subject is None]
            if not people or not missing:
                return []
            [subject_id] = people
            record = self._get_record(subject_id)
            data_key = self._data_key(subject_id)
            seal = _sealer(record, data_key)
            for identifier, _ in missing:
                record.link_identifier(
                    identifier.kind,
                    data_key.seal(
                        identifier.value, version=record.version + 1, purpose="identifier"
                    ),
                    provenance=provenance,
                    evidence=seal(evidence, "evidence"),
                )
            try:
                self.save(record, links=[(lookup, subject_id) for _, lookup in missing])
            except IntegrityError:
                continue  # another writer linked or recorded meanwhile: look again
            return [identifier for identifier, _ in missing]
        what = f"the consent record of {identifiers[0]}"
        raise _conflict(what)

    # Templates and their categories.

    def set_template_category(  # noqa: PLR0913 (a change of category has this many facts)
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        *,
        effective_at: datetime | None = None,
        source: str = "operator",
        previous: TemplateCategory | str | None = None,
        platform_template_id: str | None = None,
        signal: str | None = None,
    ) -> bool:
        """Record that a template is in ``category`` from ``effective_at`` (default now) on.

        ``signal``: the webhook item this comes from; recorded at most once. Returns
        False when that signal was recorded before.
        """

        def change(template: Template) -> None:
            template.change_category(
                TemplateCategory(category),
                effective_at=effective_at or datetime.now(UTC),
                source=source,
                previous=TemplateCategory(previous) if previous else None,
                platform_template_id=platform_template_id,
            )

        return self._change_template(business_id, name, language, change, signal)

    def announce_template_category(  # noqa: PLR0913 (an announcement has this many facts)
        self,
        business_id: str,
        name: str,
        language: str,
        category: TemplateCategory | str,
        *,
        previous: TemplateCategory | str | None,
        effective_at: datetime | None,
        platform_template_id: str | None = None,
        signal: str | None = None,
    ) -> bool:
        """Record a change of category WhatsApp announced (not in force until done)."""

        def change(template: Template) -> None:
            template.announce_category(
                TemplateCategory(category),
                previous=TemplateCategory(previous) if previous else None,
                effective_at=effective_at,
                platform_template_id=platform_template_id,
            )

        return self._change_template(business_id, name, language, change, signal)

    def template_category(
        self, business_id: str, name: str, language: str, *, at: datetime | None = None
    ) -> TemplateCategory | None:
        """The category a template is in at ``at`` (default now); None if never recorded."""
        template = self._find(Template, Template.create_id(business_id, name, language))
        return None if template is None else template.category_at(at or datetime.now(UTC))

    def template_changes(
        self, business_id: str, name: str, language: str
    ) -> list[Template.CategoryChanged]:
        """Every change of a template's category, in the order recorded."""
        template = self._find(Template, Template.create_id(business_id, name, language))
        return [] if template is None else list(template.changes)

    def _category_of(
        self,
        business_id: str,
        template: tuple[str, str],
        given: TemplateCategory | str | None,
        at: datetime | None,
    ) -> TemplateCategory:
        name, language = template
        if given is not None:
            msg = "give the template or its category, not both: the ledger knows its category"
            raise InvalidInputError(msg)
        category = self.template_category(business_id, name, language, at=at)
        if category is None:
            msg = (
                f"no category is recorded for template {name} ({language}) at that time: "
                "record it with consent-ledger template set, or ingest its category updates"
            )
            raise InvalidInputError(msg)
        return category

    def _change_template(
        self,
        business_id: str,
        name: str,
        language: str,
        change: Callable[[Template], None],
        signal: str | None,
    ) -> bool:
        self._get_business(business_id)
        key = self._signal_key(signal) if signal is not None else None
        for attempt in range(MAX_ATTEMPTS):
            _back_off(attempt)
            if key is not None and self.ledger_recorder.is_ingested(key):
                return False
            found = self._find(Template, Template.create_id(business_id, name, language))
            template = found or Template.register(business_id, name, language)
            change(template)
            try:
                self.save(template, signals=[key] if key is not None else [])
            except IntegrityError:
                continue  # another writer changed it meanwhile: look again
            return True
        what = f"template {name} ({language})"
        raise _conflict(what)

    def ingest_whatsapp(
        self, payload: object, *, business_id: str, keywords: Keywords | None = None
    ) -> IngestReport:
        """Take a WhatsApp webhook body: opt-out keywords, marketing stops, 131050s, ...

        Each item is taken at most once (see :mod:`consent_ledger.whatsapp.ingestion`); items that
        cannot be read are reported in the result, the others taken.
        """
        from consent_ledger.whatsapp.ingestion import ingest_whatsapp  # noqa: PLC0415 (only ingestion loads parsers)

        return ingest_whatsapp(self, payload, business_id=business_id, keywords=keywords)

    def note_once(self, signal: str) -> bool:
        """Remember a signal that records no event (a HELP reply, a delivery report).

        Returns False when the signal was seen before.
        """
        return self.ledger_recorder.mark_ingested(self._signal_key(signal))

    def _signal_key(self, signal: str) -> bytes:
        if not self._signals_ready:  # ledgers made before signals were ingested lack it
            self.ledger_recorder.create_signals_table()
            self._signals_ready = True
        return self._keyring.signal_key(signal)

    def change_categories(self, command: ChangeCategories) -> Recorded:
        """Record a change that grants some categories and withdraws others.

        Raises:
            NoticeNotFoundError: the notice (version) was never published.
            NoticeRuleError: categories are granted without a notice that covers them.
            ConsentRuleError: nothing changes, or a category is granted and withdrawn.
        """
        notice = self.get_notice(command.business_id, *command.notice) if command.notice else None

        def change(record: ConsentRecord, seal: Seal) -> None:
            record.change_categories(
                notice,
                channel=command.channel,
                granted=command.grant,
                withdrawn=command.withdraw,
                sender=command.sender,
                provenance=command.provenance(),
                expires_at=command.expires_at,
                legal_basis=command.legal_basis,
                jurisdiction=command.jurisdiction,
                evidence=seal(command.evidence, "evidence"),
            )

        return self._record_change(command, change)

    def _record_change(self, command: ConsentCommand, change: Change) -> Recorded:
        """Apply ``change`` to the person's record and save it, retrying lost races."""
        recorded = self._record_consent(command, change, signal=None)
        assert recorded is not None  # noqa: S101 (only a signal already seen gives None)
        return recorded

    def _record_consent(
        self, command: ConsentCommand, change: Change, *, signal: bytes | None
    ) -> Recorded | None:
        self._get_business(command.business_id)
        for attempt in range(MAX_ATTEMPTS):
            _back_off(attempt)
            if signal is not None and attempt and self.ledger_recorder.is_ingested(signal):
                return None  # the race was lost to another writer of the same signal
            record, new_subject = self._load_or_start(command.business_id, command.identifier)
            change(record, _sealer(record, self._data_key(record.id)))
            try:
                self.save(
                    record,
                    new_subjects=[new_subject] if new_subject else [],
                    signals=[signal] if signal is not None else [],
                )
            except IntegrityError:
                continue  # another writer got there first: start again from fresh state
            last = record.changes[-1]
            return Recorded(
                subject_id=record.id,
                version=record.version,
                event_type=type(last).__name__,
                recorded_at=last.timestamp,
                new_subject=new_subject is not None,
            )
        what = f"the consent record of {command.identifier}"
        raise _conflict(what)

    def _load_or_start(
        self, business_id: str, identifier: Identifier
    ) -> tuple[ConsentRecord, NewSubject | None]:
        lookup = self._keyring.lookup(business_id, identifier)
        subject_id = self.ledger_recorder.find_subject(lookup)
        if subject_id is not None:
            return self._get_record(subject_id), None
        subject_id = uuid7()
        data_key, wrapped = self._keyring.new_data_key(subject_id)
        self._data_keys.put(data_key)
        sealed = data_key.seal(identifier.value, version=1, purpose="identifier")
        record = ConsentRecord.register(subject_id, business_id, identifier.kind, sealed)
        return record, NewSubject(subject_id=subject_id, lookup=lookup, wrapped_key=wrapped)

    def _data_key(self, subject_id: UUID) -> DataKey:
        data_key = self._find_data_key(subject_id)
        if data_key is None:
            msg = f"the data key of subject {subject_id} is gone: its personal data was erased"
            raise KeyMaterialError(msg)
        return data_key

    def _find_data_key(self, subject_id: UUID) -> DataKey | None:
        data_key = self._data_keys.get(subject_id)
        if data_key is None:
            wrapped = self.ledger_recorder.select_wrapped_key(subject_id)
            if wrapped is None:
                return None
            data_key = self._keyring.unwrap(subject_id, wrapped)
            self._data_keys.put(data_key)
        return data_key

    # Queries.

    def find_subject(self, identifier: Identifier | str, *, business_id: str) -> UUID | None:
        """The id of the person's consent record with a business, if they have one."""
        identifier = _identifier(identifier)
        return self.ledger_recorder.find_subject(self._keyring.lookup(business_id, identifier))

    def get_status(
        self,
        identifier: Identifier | str,
        *,
        business_id: str,
        at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> SubjectStatus:
        """A person's consent per channel, category and sender.

        ``at`` is the moment asked about (default now): events that occurred by then count,
        even if recorded later. ``known_at`` limits the events to those recorded by then
        (default: everything recorded so far); ``known_at=T, at=T`` gives what the ledger
        would have answered at T.

        Raises:
            SubjectNotFoundError: the person has no consent record with the business.
        """
        record = self._get_record(self._require_subject(business_id, _identifier(identifier)))
        now = datetime.now(UTC)
        at = at or (known_at if known_at is not None and known_at < now else now)
        known_at = known_at or now
        return SubjectStatus(
            subject_id=record.id,
            business_id=record.business_id,
            identifier=str(_identifier(identifier)),
            at=at,
            known_at=known_at,
            consents=record.status(at, known_at),
            platform=record.platform(at, known_at),
        )

    def reveal_identifier(self, subject_id: UUID) -> str | None:
        """The identifier a person was first recorded under, opened with the master key.

        None when the person is unknown or erased (their data key destroyed).
        """
        data_key = self._find_data_key(subject_id)
        first = next(iter(self.events.get(subject_id, lte=1)), None)
        if data_key is None or not isinstance(first, ConsentRecord.SubjectRegistered):
            return None
        value: str = data_key.open(first.identifier, version=1, purpose="identifier")
        return value

    def get_history(self, identifier: Identifier | str, *, business_id: str) -> SubjectHistory:
        """Every event of a person's consent record, oldest first, personal data opened.

        Raises:
            SubjectNotFoundError: the person has no consent record with the business.
        """
        subject_id = self._require_subject(business_id, _identifier(identifier))
        data_key = self._find_data_key(subject_id)

        def unseal(sealed: Sealed | None, version: int, purpose: str) -> Any:
            if sealed is None or data_key is None:
                return None
            return data_key.open(sealed, version=version, purpose=purpose)

        events = list(self.events.get(subject_id))
        entries = [history_entry(event, unseal) for event in events]
        registered = events[0] if events else None
        return SubjectHistory(
            subject_id=subject_id,
            business_id=business_id,
            identifier=entries[0].identifier if entries else None,
            entries=entries,
            identifier_kind=str(registered.identifier_kind)
            if isinstance(registered, ConsentRecord.SubjectRegistered)
            else None,
        )

    def check(  # noqa: PLR0913 (a send has this many facts)
        self,
        identifier: Identifier | str,
        *,
        business_id: str,
        category: str,
        channel: Channel | str = Channel.WHATSAPP,
        sender: str | None = None,
        template_category: TemplateCategory | str | None = None,
        policy: str | None = None,
        at: datetime | None = None,
        known_at: datetime | None = None,
        in_service_window: bool | None = None,
        source: ConsentSource | None = None,
        template: tuple[str, str] | None = None,
    ) -> Decision:
        """May a message of ``category`` be sent to this person now (or at ``at``)?

        ``in_service_window``: whether a customer service window is open; by default the
        ledger works it out from the person's record (a message from them to ``sender``,
        or to any of the business's numbers when ``sender`` is None, in the 24 hours
        before the send), and only when it could change the answer.
        ``template``: the (name, language) of the template to send; its category in force
        at the send (see :meth:`set_template_category`) is the template category.
        ``template_category`` defaults to the category's own (offers: MARKETING); ``policy``
        to the channel's default preset (whatsapp-2025 for WhatsApp, consent-only else).
        ``source`` is where current consent is read, typically a status view that is kept
        caught up; without it, or with ``at`` or ``known_at``, the person's record is
        folded on the spot, which is exact at any moment.

        Raises:
            UnknownCategoryError: the category is not in the taxonomy.
            UnknownPolicyError: no policy preset has that name.
            InvalidInputError: the template's category was never recorded, or both a
                template and a template category were given.
        """
        identifier = _identifier(identifier)
        if template is not None:
            template_category = self._category_of(business_id, template, template_category, at)
        request = check_request(
            business_id=business_id,
            category=category,
            channel=channel,
            sender=sender,
            template_category=template_category,
            at=at or datetime.now(UTC),
            in_service_window=bool(in_service_window),
        )
        chosen = get_policy(policy, request.channel)
        decision = self._decide(chosen, request, identifier, source, at=at, known_at=known_at)
        if (
            in_service_window is None
            and decision.reason is Reason.NO_CONSENT
            and decision.subject_id is not None
            and request.template_category in chosen.service_window_exempt
            and self._service_window_open(decision.subject_id, request, known_at)
        ):
            # The person has no consent to this key (that is why the answer was no-consent):
            # only the window changes, so the rules run again on nothing, not on a new read.
            opened = request._replace(in_service_window=True)
            return decide(
                chosen,
                opened,
                subject_id=decision.subject_id,
                recipient=identifier,
                source=NO_CONSENT,
            )
        return decision

    def _service_window_open(
        self, subject_id: UUID, request: CheckRequest, known_at: datetime | None
    ) -> bool:
        """Whether the person wrote to the sender in the 24 hours before the send."""
        record = self._get_record(subject_id)
        last = record.last_inbound(request.sender, request.at, known_at or END_OF_TIME)
        return last is not None and request.at - last < SERVICE_WINDOW

    def _decide(  # noqa: PLR0913 (a check has this many facts)
        self,
        chosen: Policy,
        request: CheckRequest,
        identifier: Identifier,
        source: ConsentSource | None,
        *,
        at: datetime | None,
        known_at: datetime | None,
    ) -> Decision:
        business_id, category, sender = request.business_id, request.category, request.sender
        lookup = self._keyring.lookup(business_id, identifier)
        by_lookup = getattr(source, "consent_by_lookup", None)
        if source is not None and by_lookup is not None and at is None and known_at is None:
            # One round trip: the view finds the person and their consent together.
            subject_id, state, platform = by_lookup(lookup, request.channel, category, sender)
            if subject_id is not None:
                return decide(
                    chosen,
                    request,
                    subject_id=subject_id,
                    recipient=identifier,
                    source=_Prefetched(state, platform),
                )
        subject_id = self.ledger_recorder.find_subject(lookup)
        if subject_id is not None and (source is None or at is not None or known_at is not None):
            record = self._get_record(subject_id)
            source = RecordSource(record, request.at, known_at or datetime.now(UTC))
        return decide(
            chosen,
            request,
            subject_id=subject_id,
            recipient=identifier,
            source=source or NO_CONSENT,
        )

    def audience(  # noqa: PLR0913 (a send has this many facts)
        self,
        candidates: Iterable[Candidate],
        *,
        business_id: str,
        category: str,
        channel: Channel | str = Channel.WHATSAPP,
        sender: str | None = None,
        template_category: TemplateCategory | str | None = None,
        policy: str | None = None,
    ) -> Iterator[Recipient]:
        """The candidates a status view found, judged by ``policy`` now, identifiers opened.

        Yields those a message may be sent to, by the same rules as :meth:`check` (a
        candidate already has granted consent; expiry, the person's marketing stop and the
        recipient's country are judged here). A candidate whose data key is gone (erased)
        is skipped: there is nobody to address. :meth:`audience_pages` does the same a
        page at a time, in columns (what ``consent-ledger audience`` uses).

        Raises (at once, before anything is yielded):
            UnknownCategoryError: the category is not in the taxonomy.
            UnknownPolicyError: no policy preset has that name.
            ConsentRuleError: the template category cannot go to anyone under the policy
                (a MARKETING template for a category that is not marketing).
        """
        pages = self.audience_pages(
            map(CandidatePage.of, batched(candidates, PAGE_ROWS)),
            business_id=business_id,
            category=category,
            channel=channel,
            sender=sender,
            template_category=template_category,
            policy=policy,
        )
        return (recipient for page in pages for recipient in page.recipients())

    def audience_pages(  # noqa: PLR0913 (a send has this many facts)
        self,
        pages: Iterable[CandidatePage],
        *,
        business_id: str,
        category: str,
        channel: Channel | str = Channel.WHATSAPP,
        sender: str | None = None,
        template_category: TemplateCategory | str | None = None,
        policy: str | None = None,
    ) -> Iterator[RecipientPage]:
        """:meth:`audience`, a page of candidates at a time: each page's recipients.

        Raises (at once): as :meth:`audience`.
        """
        request = check_request(
            business_id=business_id,
            category=category,
            channel=channel,
            sender=sender,
            template_category=template_category,
            at=datetime.now(UTC),
            in_service_window=False,
        )
        chosen = get_policy(policy, request.channel)
        denial = template_denial(chosen, request)
        if denial is not None:
            raise ConsentRuleError(denial.detail)
        return self._allowed(pages, chosen, request)

    def _allowed(
        self, pages: Iterable[CandidatePage], chosen: Policy, request: CheckRequest
    ) -> Iterator[RecipientPage]:
        moment = utc_text(request.at)  # candidates' times are text in this form
        for page in pages:
            live = [
                (expires is None or expires > moment)
                and not (stops and stopping(chosen, request, stops))
                for expires, stops in zip(page.expires_at, page.marketing, strict=True)
            ]
            candidates = page if all(live) else page.only(live)
            hex_ids = [subject_id.replace("-", "") for subject_id in candidates.subject_id]
            wrapped = self.ledger_recorder.select_wrapped_keys(hex_ids)
            if len(wrapped) < len(hex_ids):  # erased: nobody to address
                candidates = candidates.only(h in wrapped for h in hex_ids)
                hex_ids = [h for h in hex_ids if h in wrapped]
            values = self._keyring.open_identifiers(
                hex_ids,
                [wrapped[h] for h in hex_ids],
                candidates.identifier_nonce,
                candidates.identifier_ct,
            )
            recipients = RecipientPage(values, candidates, chosen.name)
            if chosen.recipient_countries is not None:
                recipients = recipients.in_countries_of(chosen)
            if recipients.identifiers:
                yield recipients

    def _require_subject(self, business_id: str, identifier: Identifier) -> UUID:
        subject_id = self.find_subject(identifier, business_id=business_id)
        if subject_id is None:
            msg = f"business {business_id!r} has no consent record for {identifier}"
            raise SubjectNotFoundError(msg)
        return subject_id

    def _get_record(self, subject_id: UUID) -> ConsentRecord:
        record = self._find(ConsentRecord, subject_id)
        if record is None:
            msg = f"no consent record {subject_id}"
            raise SubjectNotFoundError(msg)
        return record

    def _find(self, cls: type[TAggregate], aggregate_id: UUID) -> TAggregate | None:
        try:
            aggregate: object = self.repository.get(aggregate_id, projector_func=_replay)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls):
            msg = f"aggregate {aggregate_id} is a {type(aggregate).__name__}, not a {cls.__name__}"
            raise TypeError(msg)
        return aggregate


_E164 = re.compile(r"\+[1-9]\d{6,14}")


def _replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """Apply each event to the aggregate, in order.

    eventsourcing's ``project_aggregate`` without its ``assert isinstance(event,
    CanMutateProtocol)``: a runtime-protocol check that costs about 40 µs an event on
    Python 3.11, most of loading a record. The events here are the domain's own, which
    all mutate.
    """
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Successive lists of up to ``size`` items (itertools.batched arrives in 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _identifier(identifier: Identifier | str) -> Identifier:
    """The identifier to look a person up by.

    A string already in E.164 form skips ``phonenumbers``: a lookup needs no validation
    (an impossible number finds nobody), and checks at send time must be fast.
    """
    if isinstance(identifier, Identifier):
        return identifier
    if _E164.fullmatch(identifier):
        return Identifier(IdentifierKind.PHONE, identifier)
    return Identifier.parse(identifier)


class RecordSource:
    """Consent read from one person's record, as it was at a moment and known at another."""

    def __init__(self, record: ConsentRecord, at: datetime, known_at: datetime) -> None:
        """Fold ``record``'s effects visible at ``at`` as known at ``known_at``."""
        self._effects = visible(record.effects(), at, known_at)

    def consent(
        self, subject_id: UUID, channel: str, category: str, sender: str | None
    ) -> ConsentState | None:
        """The base state for one channel, category and sender."""
        del subject_id  # one record only
        return base_state(self._effects, channel, category, sender)

    def platform(self, subject_id: UUID) -> list[PlatformState]:
        """The latest marketing stop or resume per sender."""
        del subject_id
        return platform_states(self._effects)


class _Prefetched:
    """A source whose answers for the one person and key asked about have been read."""

    def __init__(self, state: ConsentState | None, platform: list[PlatformState]) -> None:
        self._state = state
        self._platform = platform

    def consent(self, *_: object) -> ConsentState | None:
        """The state read with the lookup."""
        return self._state

    def platform(self, *_: object) -> list[PlatformState]:
        """The marketing stops read with it."""
        return self._platform


class _NoConsent:
    """The source for a person the ledger has never seen."""

    def consent(self, *_: object) -> ConsentState | None:
        """Nothing."""
        return None

    def platform(self, *_: object) -> list[PlatformState]:
        """Nothing."""
        return []


NO_CONSENT = _NoConsent()


Change = Callable[[ConsentRecord, "Seal"], None]


def _sealer(record: ConsentRecord, key: DataKey) -> Seal:
    """Seals a value (a pydantic model as its JSON) for the event the record takes next."""

    def seal(value: Any, purpose: str) -> Sealed | None:
        if value is None:
            return None
        plain = (
            value.model_dump(mode="json", exclude_none=True)
            if isinstance(value, BaseModel)
            else value
        )
        return key.seal(plain, version=record.version + 1, purpose=purpose)

    return seal


"""What a command does to a person's record, given a way to seal personal data."""


def _opting_out(command: OptOut) -> Change:
    def change(record: ConsentRecord, seal: Seal) -> None:
        record.opt_out(
            channel=command.channel,
            categories=command.categories,
            sender=command.sender,
            provenance=command.provenance(),
            reason=seal(command.reason, "reason"),
            evidence=seal(command.evidence, "evidence"),
        )

    return change


def _signalling(command: RecordSignal) -> Change:
    def change(record: ConsentRecord, seal: Seal) -> None:
        record.receive_signal(
            command.signal,
            detail=command.detail,
            code=command.code,
            sender=command.sender,
            provenance=command.provenance(),
            evidence=seal(command.evidence, "evidence"),
        )

    return change


def _preferring(command: RecordPlatformPreference) -> Change:
    def change(record: ConsentRecord, seal: Seal) -> None:
        record.record_platform_preference(
            stopped=command.stopped,
            sender=command.sender,
            provenance=command.provenance(),
            evidence=seal(command.evidence, "evidence"),
        )

    return change


def _business_info(business: Business) -> BusinessInfo:
    return BusinessInfo(
        business_id=business.business_id,
        display_name=business.display_name,
        notice_ids=tuple(business.notice_ids),
    )


def _back_off(attempt: int) -> None:
    """Wait before retrying a lost race, so that racing writers spread out."""
    if attempt:
        time.sleep(random.uniform(0, min(0.25, BACKOFF_SECONDS * 2**attempt)))  # noqa: S311


def _conflict(what: str) -> ConcurrentUpdateError:
    msg = (
        f"{what} was changed by other writers {MAX_ATTEMPTS} times while this command ran; "
        "nothing was recorded: run it again"
    )
    return ConcurrentUpdateError(msg)


def _new_key(
    store: Store, key_file: Path | None, master_key: MasterKey | None
) -> tuple[MasterKey, KeyLocation]:
    """The master key of a new ledger, and where it will be kept."""
    if master_key is not None:
        return master_key, KeyLocation(file=key_file)
    if key_file is None and os.environ.get(KEY_ENV):
        return MasterKey.from_text(os.environ[KEY_ENV]), KeyLocation(file=None, env_var=KEY_ENV)
    key_file = key_file or _env_path(KEY_FILE_ENV) or store.default_key_file
    if key_file is None:
        msg = (
            f"a PostgreSQL ledger keeps its master key outside the database: pass --key-file "
            f"PATH to create one there, or set {KEY_ENV} to a base64 key of 32 bytes"
        )
        raise MissingKeyError(msg)
    if key_file.exists():
        msg = f"a key file already exists at {key_file}; refusing to overwrite it"
        raise KeyMaterialError(msg)
    return MasterKey.generate(), KeyLocation(file=key_file)


def _find_key(
    store: Store, key_file: Path | None, master_key: MasterKey | None
) -> tuple[str | None, MasterKey, KeyLocation | None]:
    """The master key of an existing ledger: the ledger id it claims, the key, its place."""
    if master_key is not None:
        return None, master_key, None
    if key_file is None and os.environ.get(KEY_ENV):
        location = KeyLocation(file=None, env_var=KEY_ENV)
        return None, MasterKey.from_text(os.environ[KEY_ENV]), location
    key_file = key_file or _env_path(KEY_FILE_ENV) or store.default_key_file
    if key_file is None:
        msg = (
            f"no master key for the ledger at {store}: set {KEY_ENV} or {KEY_FILE_ENV}, "
            "or pass --key-file"
        )
        raise MissingKeyError(msg)
    try:
        ledger_id, master = read_key_file(key_file)
    except MissingKeyError:
        msg = (
            f"no key file at {key_file} for the ledger at {store}: without its master key "
            f"a ledger cannot be opened (set {KEY_FILE_ENV} or pass --key-file)"
        )
        raise MissingKeyError(msg) from None
    return ledger_id, master, KeyLocation(file=key_file)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None
