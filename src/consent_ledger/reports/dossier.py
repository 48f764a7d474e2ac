"""A person's consent dossier: one self-contained HTML file an auditor can read, print and check.

The dossier holds, for one person and one business: their consent now, every event of
their record (when it occurred and when it was recorded, how, by whom, on which notice,
with what evidence), the full text of every notice version they agreed to (with its hash
recomputed and compared with the hash their opt-in recorded), and the integrity proof of
their events: a checkpoint signed just before, the key that verifies it, and for each
event its leaf record, exactly as hashed, with the audit path to the signed root.

:func:`gather_dossier` collects the facts (signing a checkpoint on the way);
:func:`render_html` writes them as HTML5 with inline CSS and no script, escaping every
value (identifiers, evidence, notice text and business names come from users);
:func:`render_dossier` does both.
"""

from __future__ import annotations

import base64
import binascii
import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NewType

from consent_ledger.evidence.merkle import leaf_hash
from consent_ledger.exceptions import NoticeNotFoundError
from consent_ledger.model.identifiers import address
from consent_ledger.model.notice import content_hash
from consent_ledger.model.status import EVERY
from consent_ledger.model.values import utc_text
from consent_ledger.reports.export import event_types

if TYPE_CHECKING:
    from collections.abc import Iterable
    from uuid import UUID

    from consent_ledger.evidence.integrity import SignedCheckpoint
    from consent_ledger.ledger import BusinessInfo, ConsentLedger
    from consent_ledger.model.commands import Evidence
    from consent_ledger.model.history import HistoryEntry, SubjectHistory, SubjectStatus
    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.notice import NoticeVersion
    from consent_ledger.model.status import ConsentState, PlatformState
    from consent_ledger.model.values import NoticeRef
    from consent_ledger.storage.log import StoredRow

Html = NewType("Html", str)
"""Markup that is safe to insert as it is: built by this module, every value escaped."""

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Evidence files shown inline as pictures (a raster image runs no code)."""

LATE_AFTER_SECONDS = 60  # an event recorded later than this after it occurred is flagged


# The facts.


@dataclass(frozen=True)
class NoticeCheck:
    """A notice version the person agreed to, and whether its text has the hash recorded."""

    ref: NoticeRef
    notice: NoticeVersion | None  # None: the ledger holds no such version
    events: tuple[int, ...]  # the versions of the person's events that rest on it

    @property
    def text_hash(self) -> str | None:
        """The hash of the notice's text, computed now as the ledger computes it."""
        return None if self.notice is None else content_hash(self.notice.text)

    @property
    def matches(self) -> bool:
        """Whether the text hashes to the hash the opt-in recorded (and the notice keeps)."""
        return self.notice is not None and (
            self.text_hash == self.ref.content_hash == self.notice.content_hash
        )


@dataclass(frozen=True)
class EventProof:
    """One of the person's stored events, and the audit path to the checkpoint's root."""

    position: int
    version: int
    event_type: str
    leaf_index: int
    record: bytes
    path: list[bytes]

    @property
    def leaf_hash(self) -> bytes:
        """``SHA-256(0x00 || record)``."""
        return leaf_hash(self.record)


@dataclass(frozen=True)
class Dossier:
    """Everything a dossier shows about one person's consent towards one business."""

    business: BusinessInfo
    ledger_id: str
    generated_at: datetime
    status: SubjectStatus
    history: SubjectHistory
    notices: list[NoticeCheck]
    checkpoint: SignedCheckpoint
    verifier_key: str
    proofs: list[EventProof]

    @property
    def subject_id(self) -> UUID:
        """The id of the person's consent record."""
        return self.history.subject_id

    @property
    def erased(self) -> bool:
        """Whether the person's data key is gone, so their personal data cannot be read."""
        return self.history.identifier is None


def gather_dossier(
    ledger: ConsentLedger,
    identifier: Identifier | str,
    *,
    business_id: str,
    now: datetime | None = None,
) -> Dossier:
    """Collect a person's dossier; signs a checkpoint covering every event so far.

    ``now`` is the moment the current state is given for (default: now).

    Raises:
        SubjectNotFoundError: the person has no consent record with the business.
        BusinessNotFoundError: the business is not registered.
        IntegrityError: the person's events are not as the ledger's tree holds them.
    """
    now = now or datetime.now(UTC)
    business = ledger.get_business(business_id)
    status = ledger.get_status(identifier, business_id=business_id, at=now, known_at=now)
    history = ledger.get_history(identifier, business_id=business_id)
    rows = ledger.event_log.read_stream(history.subject_id)  # after history: covers it
    signed = ledger.checkpoint()  # after the rows: covers them
    return Dossier(
        business=business,
        ledger_id=ledger.event_log.ledger_id,
        generated_at=now,
        status=status,
        history=history,
        notices=_notice_checks(ledger, business_id, history.entries),
        checkpoint=signed,
        verifier_key=ledger.verifier_key().text,
        proofs=_proofs(ledger, rows, signed),
    )


def _notice_checks(
    ledger: ConsentLedger, business_id: str, entries: list[HistoryEntry]
) -> list[NoticeCheck]:
    """Each distinct notice version the person's events rest on, in first-seen order."""
    events: dict[NoticeRef, list[int]] = {}
    for entry in entries:
        if entry.notice is not None:
            events.setdefault(entry.notice, []).append(entry.version)
    checks = []
    for ref, versions in events.items():
        try:
            notice: NoticeVersion | None = ledger.get_notice(
                business_id, ref.notice_id, ref.version
            )
        except NoticeNotFoundError:
            notice = None
        checks.append(NoticeCheck(ref, notice, tuple(versions)))
    return checks


def _proofs(
    ledger: ConsentLedger, rows: list[StoredRow], signed: SignedCheckpoint
) -> list[EventProof]:
    evidence = ledger.tamper_evidence
    proven = evidence.prove(rows, signed, evidence.tree(signed))
    return [
        EventProof(row[0], row[2], event_types(row[3])[1], each.leaf_index, each.record, each.path)
        for row, each in zip(rows, proven, strict=True)
    ]


def render_dossier(
    ledger: ConsentLedger,
    identifier: Identifier | str,
    *,
    business_id: str,
    now: datetime | None = None,
) -> str:
    """A person's dossier as one self-contained HTML document (see :func:`gather_dossier`)."""
    return render_html(gather_dossier(ledger, identifier, business_id=business_id, now=now))


# Markup.


def esc(value: object) -> Html:
    """A value as text, escaped."""
    return Html(html.escape(str(value), quote=True))


def el(name: str, /, *children: Html, **attrs: object) -> Html:
    """An element around already-safe children; ``class_`` is ``class``, ``_`` in names ``-``.

    Attributes whose value is None are left out.
    """
    written = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{html.escape(str(value), quote=True)}"'
        for key, value in attrs.items()
        if value is not None
    )
    return Html(f"<{name}{written}>{''.join(children)}</{name}>")


def void(name: str, /, **attrs: object) -> Html:
    """An element with no content and no end tag (``img``, ``meta``)."""
    return Html(el(name, **attrs).removesuffix(f"</{name}>"))


def join(parts: Iterable[Html], separator: str = "") -> Html:
    """Safe parts one after another."""
    return Html(separator.join(parts))


def _time(value: datetime | None, *, seconds: bool = False) -> Html:
    """A UTC time for people (spaces let it wrap); the exact ledger form in ``datetime``."""
    if value is None:
        return esc("-")
    shown = value.astimezone(UTC).strftime(
        "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M:%S.%f"
    )
    return el("time", esc(f"{shown} UTC"), datetime=utc_text(value))


def _mono(value: object, class_: str | None = None) -> Html:
    return el("code", esc(value), class_=class_)


def _every(name: str | None, every: str) -> Html:
    if name is None or name == EVERY:
        return el("em", esc(every))
    return esc(name)


def _fields(rows: Iterable[tuple[str, Html | None]], class_: str = "fields") -> Html:
    """A two-column table of the rows that have a value."""
    body = join(el("tr", el("th", esc(label)), el("td", value)) for label, value in rows if value)
    return el("table", el("tbody", body), class_=class_)


def _table(columns: Iterable[tuple[str, int]], rows: Iterable[Html], class_: str) -> Html:
    """A table of fixed layout: each column is (title, width in percent), so none overflows."""
    columns = list(columns)
    widths = el("colgroup", join(void("col", style=f"width: {w}%") for _, w in columns))
    head = el("thead", el("tr", join(el("th", esc(c), scope="col") for c, _ in columns)))
    return el("table", widths, head, el("tbody", join(rows)), class_=f"grid {class_}")


def _row(cells: Iterable[Html], **attrs: object) -> Html:
    return el("tr", join(el("td", cell) for cell in cells), **attrs)


def _section(id_: str, title: str, *children: Html, first: bool = False) -> Html:
    return el(
        "section",
        el("h2", esc(title)),
        *children,
        id=id_,
        class_="part first" if first else "part",
    )


# The document.


def render_html(dossier: Dossier) -> str:
    """The dossier as one HTML5 document: inline CSS, no script, nothing fetched."""
    title = f"Consent dossier: {dossier.business.display_name}, subject {dossier.subject_id}"
    head = join(
        [
            void("meta", charset="utf-8"),
            void("meta", http_equiv="Content-Security-Policy", content=_CSP),
            void("meta", name="viewport", content="width=device-width, initial-scale=1"),
            el("title", esc(title)),
            el("style", Html(_css(dossier))),
        ]
    )
    body = join(
        [
            _header(dossier),
            _contents(),
            _current_state(dossier),
            _timeline(dossier),
            _notices(dossier),
            _integrity(dossier),
            _records(dossier),
        ],
        "\n",
    )
    document = f'<html lang="en">\n<head>{head}</head>\n<body>\n{body}\n</body>\n</html>\n'
    return "<!DOCTYPE html>\n" + document


_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _header(dossier: Dossier) -> Html:
    person = (
        el("strong", esc(dossier.history.identifier), id="identifier")
        if not dossier.erased
        else el("strong", esc("erased"), id="identifier", class_="erased")
    )
    facts = _fields(
        [
            (
                "Business",
                join(
                    [
                        esc(dossier.business.display_name),
                        esc(" ("),
                        _mono(dossier.business.business_id),
                        esc(")"),
                    ]
                ),
            ),
            ("Person", person),
            ("Subject id", _mono(dossier.subject_id, "subject-id")),
            ("Generated", _time(dossier.generated_at)),
            ("Ledger", _mono(dossier.ledger_id)),
            (
                "Events",
                esc(f"{len(dossier.history.entries)}, all covered by the signed checkpoint below"),
            ),
        ]
    )
    parts = [
        el("h1", esc("Consent dossier")),
        el(
            "p",
            esc(
                "Everything this ledger holds about one person's consent towards one business: "
                "what it is now, every event that made it so, the exact wording they agreed "
                "to, and the proof that these events are exactly as the ledger signed them."
            ),
            class_="lead",
        ),
        facts,
    ]
    if dossier.erased:
        parts.append(_erased_banner())
    return el("header", *parts, class_="part first")


def _erased_banner() -> Html:
    return el(
        "p",
        el("strong", esc("Personal data erased. ")),
        esc(
            "This person's data key has been destroyed: their identifier, evidence and "
            "opt-out reasons can no longer be read and show as erased. The facts of each "
            "event (what, when, how, on which notice) remain, and so do their proofs."
        ),
        class_="banner",
        id="erased",
    )


def _contents() -> Html:
    items = [
        ("current-state", "Current state"),
        ("timeline", "Timeline of events"),
        ("notices", "Notices agreed to"),
        ("integrity", "Integrity proof"),
        ("records", "Appendix: leaf records"),
    ]
    links = join(el("li", el("a", esc(label), href=f"#{anchor}")) for anchor, label in items)
    return el("nav", el("ol", links))


# Current state.


def _current_state(dossier: Dossier) -> Html:
    status = dossier.status
    intro = el(
        "p",
        esc("Consent per channel, category and sender at "),
        _time(status.at),
        esc(
            ", from every event recorded by then. A withdrawal of every category or channel "
            "shows as "
        ),
        el("em", esc("all")),
        esc("; consent towards every sender as "),
        el("em", esc("any")),
        esc("."),
    )
    consents = (
        _table(
            _STATE_COLUMNS,
            (_state_row(state) for state in status.consents),
            "states",
        )
        if status.consents
        else el("p", esc("No consent was ever recorded for this person."))
    )
    parts = [intro, consents]
    if status.platform:
        parts += [
            el("h3", esc("Marketing stops on WhatsApp")),
            _table(
                (("Sender", 20), ("Marketing", 15), ("Since", 25), ("Event", 40)),
                (_platform_row(state) for state in status.platform),
                "platform",
            ),
        ]
    return _section("current-state", "Current state", *parts, first=True)


_STATE_COLUMNS = (
    ("Channel", 11),
    ("Category", 19),
    ("Sender", 9),
    ("State", 14),
    ("Since", 13),
    ("Expires", 13),
    ("Rests on", 21),
)


def _state_row(state: ConsentState) -> Html:
    rests_on = _event_link(state.event_version, state.event_type)
    if state.notice:
        rests_on = join([rests_on, esc(", notice "), _notice_link(state.notice)])
    cells = [
        _every(state.channel, "all"),
        _every(state.category, "all"),
        _every(state.sender, "any"),
        el("span", esc(state.state.value), class_=f"state state-{state.state.value}"),
        _time(state.since, seconds=True),
        _time(state.expires_at, seconds=True),
        rests_on,
    ]
    return _row(
        cells,
        data_channel=state.channel,
        data_category=state.category,
        data_sender=state.sender or "",
        data_state=state.state.value,
        data_event_version=state.event_version,
    )


def _platform_row(state: PlatformState) -> Html:
    cells = [
        _every(state.sender, "any"),
        el("strong", esc("stopped")) if state.stopped else esc("resumed"),
        _time(state.since, seconds=True),
        _event_link(state.event_version, state.event_type),
    ]
    return _row(
        cells,
        data_sender=state.sender or "",
        data_stopped="yes" if state.stopped else "no",
    )


def _notice_anchor(ref: NoticeRef) -> str:
    return f"notice-{ref.notice_id}-{ref.version}"


def _notice_link(ref: NoticeRef) -> Html:
    return el("a", esc(str(ref)), href=f"#{_notice_anchor(ref)}")


def _event_link(version: int, event_type: str | None = None) -> Html:
    label = f"#{version} {event_type}" if event_type else f"#{version}"
    return el("a", esc(label), href=f"#event-{version}")


# Timeline.


def _timeline(dossier: Dossier) -> Html:
    by_version = {proof.version: proof for proof in dossier.proofs}
    intro = el(
        "p",
        esc(
            "Every event of the person's consent record, oldest first. Occurred: when the "
            "decision was made; recorded: when the ledger stored it. Times are UTC."
        ),
    )
    events = join(
        (
            _event(entry, by_version.get(entry.version), erased=dossier.erased)
            for entry in dossier.history.entries
        ),
        "\n",
    )
    return _section("timeline", "Timeline of events", intro, events)


def _event(entry: HistoryEntry, proof: EventProof | None, *, erased: bool) -> Html:
    when = entry.occurred_at or entry.recorded_at
    heading = el("h3", esc(f"#{entry.version} {entry.event_type}, "), _time(when, seconds=True))
    return el(
        "article",
        heading,
        _fields(_event_fields(entry, proof, erased=erased)),
        id=f"event-{entry.version}",
        class_="event",
        data_version=entry.version,
        data_event_type=entry.event_type,
    )


def _event_fields(
    entry: HistoryEntry, proof: EventProof | None, *, erased: bool
) -> list[tuple[str, Html | None]]:
    occurred = (
        _time(entry.occurred_at)
        if entry.occurred_at is not None
        else esc("- (the record was opened: bookkeeping, not a decision)")
    )
    return [
        ("Occurred", el("span", occurred, class_="occurred")),
        ("Recorded", el("span", _time(entry.recorded_at), class_="recorded")),
        ("Recorded late", _lateness(entry)),
        ("Identifier", _identifier(entry)),
        ("Channel", _every(entry.channel, "all channels") if entry.channel else None),
        ("Sender", _every(entry.sender, "any sender") if entry.channel else None),
        ("Granted", _categories(entry.granted)),
        ("Withdrawn", _categories(entry.withdrawn)),
        ("Confirmed", _categories(entry.confirmed)),
        (
            "Awaiting confirmation",
            esc("yes (double opt-in)") if entry.awaiting_confirmation else None,
        ),
        (
            "Marketing on WhatsApp",
            esc(entry.platform_marketing) if entry.platform_marketing else None,
        ),
        ("Method", el("span", esc(entry.method), class_="method") if entry.method else None),
        ("Collection point", esc(entry.collection_point) if entry.collection_point else None),
        ("Actor", esc(entry.actor) if entry.actor else None),
        ("Notice", _entry_notice(entry.notice) if entry.notice else None),
        ("Expires", _time(entry.expires_at) if entry.expires_at else None),
        ("Legal basis", esc(entry.legal_basis) if entry.legal_basis else None),
        ("Jurisdiction", esc(entry.jurisdiction) if entry.jurisdiction else None),
        ("Reason", _reason(entry, erased=erased)),
        ("Reported", esc(entry.signal) if entry.signal else None),
        ("Evidence", _evidence(entry)),
        ("Proof", _proof_link(proof)),
    ]


def _lateness(entry: HistoryEntry) -> Html | None:
    if entry.occurred_at is None:
        return None
    late = (entry.recorded_at - entry.occurred_at).total_seconds()
    if late <= LATE_AFTER_SECONDS:
        return None
    days, rest = divmod(int(late), 86_400)
    hours, rest = divmod(rest, 3600)
    amounts = ((days, "d"), (hours, "h"), (rest // 60, "min"))
    spelled = " ".join(f"{n} {unit}" for n, unit in amounts if n) or "1 min"
    return esc(f"recorded {spelled} after it occurred")


def _reason(entry: HistoryEntry, *, erased: bool) -> Html | None:
    if entry.reason:
        return _text_block(entry.reason, "reason")
    if erased and entry.event_type == "OptedOut":
        return el("em", esc("erased, if one was given"), class_="erased")
    return None


def _identifier(entry: HistoryEntry) -> Html | None:
    """The identifier a record was opened under, or one linked to it later (with its kind)."""
    if entry.event_type not in ("SubjectRegistered", "IdentifierLinked"):
        return None
    if entry.identifier is None:
        return el("strong", esc("erased"), class_="erased")
    if entry.linked:
        return esc(f"{address(entry.linked, entry.identifier)} (linked: now also found by it)")
    return esc(entry.identifier)


def _categories(names: tuple[str, ...]) -> Html | None:
    if not names:
        return None
    return join((_every(name, "all categories") for name in names), ", ")


def _entry_notice(ref: NoticeRef) -> Html:
    return join(
        [
            _notice_link(ref),
            esc(f" ({ref.language}, as {ref.business_name}) "),
            _mono(ref.content_hash, "hash"),
        ]
    )


def _text_block(text: str, class_: str) -> Html:
    return el("div", esc(text), class_=f"text {class_}")


def _evidence(entry: HistoryEntry) -> Html | None:
    if entry.evidence is None:
        return el("strong", esc("erased"), class_="erased") if entry.personal_data_erased else None
    evidence = entry.evidence
    return _fields(
        [
            ("Text", _text_block(evidence.text, "evidence-text") if evidence.text else None),
            ("File", _evidence_file(evidence)),
            ("IP address", esc(evidence.ip) if evidence.ip else None),
            ("User agent", esc(evidence.user_agent) if evidence.user_agent else None),
        ],
        class_="fields evidence",
    )


def _evidence_file(evidence: Evidence) -> Html | None:
    if evidence.content is None:
        return None
    try:
        data = base64.b64decode(evidence.content, validate=True)
    except (binascii.Error, ValueError):
        return esc(f"{evidence.file_name} (unreadable content)")
    described = join(
        [
            esc(f"{evidence.file_name} ({evidence.media_type}, {len(data):,} bytes), sha256 "),
            _mono(evidence.sha256 or "-", "hash"),
        ]
    )
    if evidence.media_type not in IMAGE_TYPES:
        return described
    picture = void(
        "img",
        src=f"data:{evidence.media_type};base64,{evidence.content}",
        alt=f"evidence file {evidence.file_name}",
    )
    return join([described, el("div", picture, class_="picture")])


def _proof_link(proof: EventProof | None) -> Html:
    if proof is None:
        return esc("not covered (recorded while this dossier was made)")
    return el(
        "a",
        esc(f"leaf {proof.leaf_index} at log position {proof.position}"),
        href=f"#proof-{proof.version}",
    )


# Notices.


def _notices(dossier: Dossier) -> Html:
    if not dossier.notices:
        body = el("p", esc("The person agreed to no notice."))
    else:
        body = join((_notice(check) for check in dossier.notices), "\n")
    intro = el(
        "p",
        esc(
            "The full text of every notice version the person's opt-ins rest on. Each opt-in "
            "recorded the SHA-256 of the text it was given on; the hash of the text shown here "
            "was computed again when this dossier was made, from its UTF-8 bytes."
        ),
    )
    return _section("notices", "Notices agreed to", intro, body)


def _notice(check: NoticeCheck) -> Html:
    ref, notice = check.ref, check.notice
    events = join((_event_link(v) for v in check.events), ", ")
    if notice is None:
        missing = el("p", el("strong", esc("This ledger holds no such notice version.")))
        return el("article", el("h3", esc(str(ref))), missing, class_="notice verdict-bad")
    facts = _fields(
        [
            ("Business name", esc(notice.business_name)),
            ("Language", esc(notice.language)),
            ("Channel", esc(notice.channel)),
            ("Categories", esc(", ".join(notice.categories))),
            ("Published", _time(notice.published_at)),
            ("Policy", esc(notice.policy_url) if notice.policy_url else None),
            ("Agreed to in", events),
            ("Hash recorded", _mono(ref.content_hash, "hash recorded-hash")),
            ("Hash of this text", _mono(check.text_hash, "hash text-hash")),
            ("Check", _verdict(check)),
        ]
    )
    return el(
        "article",
        el("h3", esc(f"{ref} ({notice.language})")),
        facts,
        el("div", esc(notice.text), class_="notice-text"),
        id=_notice_anchor(ref),
        class_="notice",
        data_notice=str(ref),
        data_matches="yes" if check.matches else "no",
    )


def _verdict(check: NoticeCheck) -> Html:
    if check.matches:
        return el(
            "strong",
            esc("MATCHES: this is exactly the text the opt-in recorded."),
            class_="verdict verdict-ok",
        )
    return el(
        "strong",
        esc("DOES NOT MATCH: this text is not the one the opt-in recorded."),
        class_="verdict verdict-bad",
    )


# Integrity.


def _integrity(dossier: Dossier) -> Html:
    signed = dossier.checkpoint
    root = signed.checkpoint.root
    facts = _fields(
        [
            ("Tree size", esc(f"{signed.size:,} events (the whole ledger)")),
            ("Root (hex)", _mono(root.hex(), "hash")),
            ("Root (base64)", _mono(base64.b64encode(root).decode(), "hash")),
            ("Signed", _time(signed.signed_at)),
        ]
    )
    return _section(
        "integrity",
        "Integrity proof",
        el(
            "p",
            esc(
                "Every event the ledger stores is a leaf of one Merkle tree (RFC 9162), in log "
                "order. The ledger signed the tree head below with its Ed25519 key when this "
                "dossier was made. Each of the person's events follows with the audit path "
                "that leads from its leaf to that signed root, so anyone holding this file and "
                "the ledger's verifier key can check that these events are part of the signed "
                "log, byte for byte."
            ),
        ),
        el("h3", esc("Signed checkpoint")),
        facts,
        el("pre", esc(signed.note), id="checkpoint-note", class_="note"),
        el("h3", esc("Verifier key")),
        el("pre", esc(dossier.verifier_key), id="verifier-key", class_="key"),
        el(
            "p",
            esc("Trust this key only if it matches the one the business gave you separately ("),
            el("code", esc("consent-ledger checkpoint --print-key")),
            esc(")."),
        ),
        el("h3", esc("How to check")),
        _instructions(),
        el("h3", esc("Proof of each event")),
        join((_proof(proof) for proof in dossier.proofs), "\n"),
    )


_STEPS = [
    (
        "Take the event's leaf record from the appendix, exactly as written there (UTF-8, no "
        "line breaks added: copy it from this HTML file, not from a printout). It is the event "
        "as stored, in canonical JSON (RFC 8785); personal data inside it is encrypted."
    ),
    (
        "Compute the leaf hash: SHA-256 of one zero byte (0x00) followed by the record. It must "
        "equal the leaf hash shown for the event."
    ),
    (
        "Fold the audit path (RFC 9162 section 2.1.3.2): let fn be the leaf index, sn the tree "
        "size minus 1, r the leaf hash. For each hash p of the path in order: if sn is 0, the "
        "proof fails; if fn is odd or fn equals sn, set r = SHA-256(0x01 || p || r) and then, "
        "while fn is even and not 0, halve fn and sn (dropping remainders); otherwise set "
        "r = SHA-256(0x01 || r || p). Then halve fn and sn. At the end sn must be 0 and r must "
        "equal the root."
    ),
    "Compare r with the root on the third line of the signed checkpoint (base64).",
    (
        "Check the checkpoint's signature with the verifier key (C2SP signed note, Go's "
        "sumdb/note format): the key is name+keyid+base64(0x01 || 32-byte Ed25519 public key); "
        "the signature line is '\N{EM DASH} name base64(4-byte key id || 64-byte signature)', "
        "signed over the three lines above the blank line, each ending in a newline."
    ),
    (
        "With the ledger at hand, consent-ledger verify --public-key KEY --since NOTE checks the "
        "whole log against this checkpoint (save the note above to a file first)."
    ),
]


def _instructions() -> Html:
    return el("ol", join(el("li", esc(step)) for step in _STEPS), class_="steps")


def _proof(proof: EventProof) -> Html:
    path = (
        el("ol", join(el("li", _mono(h.hex())) for h in proof.path), class_="audit-path")
        if proof.path
        else el("p", esc("(empty: the leaf is the whole tree)"), class_="audit-path")
    )
    return el(
        "article",
        el("h4", esc("Event "), _event_link(proof.version, proof.event_type)),
        _fields(
            [
                ("Log position", esc(proof.position)),
                ("Leaf index", esc(proof.leaf_index)),
                ("Leaf hash", _mono(proof.leaf_hash.hex(), "hash leaf-hash")),
                ("Audit path", path),
                (
                    "Leaf record",
                    el("a", esc("in the appendix"), href=f"#record-{proof.leaf_index}"),
                ),
            ]
        ),
        id=f"proof-{proof.version}",
        class_="proof",
        data_version=proof.version,
        data_position=proof.position,
        data_leaf_index=proof.leaf_index,
        data_leaf_hash=proof.leaf_hash.hex(),
        data_path=" ".join(h.hex() for h in proof.path),
    )


def _records(dossier: Dossier) -> Html:
    intro = el(
        "p",
        esc(
            "Each of the person's events exactly as the ledger hashed it: the record's UTF-8 "
            "bytes are the leaf data. Long lines wrap on screen and on paper; the record itself "
            "holds no line break."
        ),
    )
    records = join(
        (
            el(
                "div",
                el(
                    "h4", esc(f"Event #{proof.version} {proof.event_type}, leaf {proof.leaf_index}")
                ),
                el(
                    "pre",
                    esc(proof.record.decode()),
                    id=f"record-{proof.leaf_index}",
                    class_="leaf-record",
                    data_leaf_index=proof.leaf_index,
                ),
                class_="record",
            )
            for proof in dossier.proofs
        ),
        "\n",
    )
    return _section("records", "Appendix: leaf records", intro, records)


# Style.


def _css(dossier: Dossier) -> str:
    footer = f"Consent dossier, subject {dossier.subject_id}"  # a UUID: safe in CSS
    return _CSS.replace("FOOTER", footer)


_CSS = """
:root { color: #000; background: #fff; }
body { font: 10.5pt/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif;
  max-width: 54em; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 20pt; margin: 0 0 .2em; }
h2 { font-size: 15pt; border-bottom: 2px solid #000; padding-bottom: .15em; margin: 2em 0 .6em; }
h3 { font-size: 11.5pt; margin: 1.4em 0 .4em; }
h4 { font-size: 10.5pt; margin: 1em 0 .3em; }
p.lead { font-size: 11pt; }
a { color: #0645ad; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 .8em; }
th, td { border: 1px solid #666; padding: .25em .45em; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
h3 time { font-weight: normal; }
thead th { background: #e8e8e8; border-bottom: 2px solid #000; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
table.fields > tbody > tr > th { width: 10em; font-weight: 600; background: #f4f4f4; }
table.evidence { margin: 0; }
table.evidence > tbody > tr > th { width: 6.5em; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 8.5pt; }
code.hash, .audit-path code { word-break: break-all; }
pre { white-space: pre-wrap; word-break: break-all; border: 1px solid #888; padding: .5em .6em;
  margin: .4em 0 .8em; background: #fafafa; }
.text { white-space: pre-wrap; }
.notice-text { white-space: pre-wrap; font-family: Georgia, "DejaVu Serif", serif; font-size: 11pt;
  border: 1px solid #000; border-left-width: 5px; padding: .6em .9em; margin: .5em 0 1em; }
table.grid { table-layout: fixed; }
table.states { font-size: 9pt; }
.state { font-weight: 700; }
.state-withdrawn, .state-expired { font-style: italic; }
.verdict-ok::before { content: "\\2713  "; }
.verdict-bad { text-decoration: underline; }
.verdict-bad::before { content: "\\2717  "; }
.erased { font-style: italic; }
.banner { border: 3px double #000; padding: .6em .9em; }
.event, .proof, .notice { break-inside: avoid; }
.notice { break-inside: auto; }
.audit-path { margin: 0; padding-left: 2em; }
.picture img { max-width: 100%; max-height: 12cm; border: 1px solid #888; margin-top: .3em; }
nav ol { columns: 2; }
@page { size: A4; margin: 16mm 15mm 18mm;
  @bottom-left { content: "FOOTER"; font: 7.5pt sans-serif; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); font: 7.5pt sans-serif; } }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 9.5pt; }
  nav { display: none; }
  a { color: inherit; text-decoration: none; }
  .part { break-before: page; }
  .part.first { break-before: auto; }
  h2, h3, h4 { break-after: avoid; }
  pre, thead th, table.fields > tbody > tr > th { background: none; }
  thead th { border-bottom: 2px solid #000; }
}
"""
