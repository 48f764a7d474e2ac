"""A person's dossier, checked as an auditor would check it: from the HTML file alone.

The dossier is parsed with the standard library's HTML parser; every check reads what the
file shows (elements marked with ids, classes and data- attributes), never the ledger's
own objects, except to know what the file should say.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from consent_ledger import (
    ChangeCategories,
    ConsentLedger,
    Evidence,
    Identifier,
    Method,
    OptIn,
    OptOut,
    PublishNotice,
    RecordPlatformPreference,
    RegisterBusiness,
    SubjectNotFoundError,
)
from consent_ledger.evidence.checkpoint import open_note, parse_verifier_key
from consent_ledger.evidence.merkle import leaf_hash, verify_inclusion
from consent_ledger.model.commands import RecordSignal
from consent_ledger.model.notice import content_hash
from consent_ledger.model.values import Provenance, utc_text
from consent_ledger.reports.dossier import CheckpointCoverageError, gather_dossier, render_html
from consent_ledger.storage.stores import PostgresStore, parse_store

from .conftest import BUSINESS, BUSINESS_NAME, SMS_TEXT, WHATSAPP_TEXT, StoreFactory, new_ledger

if TYPE_CHECKING:
    from pathlib import Path

ADA = "+44 7700 900123"
ADA_E164 = "+447700900123"
BRUNO = "+1 202-555-0143"
BRUNO_E164 = "+12025550143"
VOID = frozenset({"meta", "img", "col", "br", "hr", "link", "input"})
HOSTILE = "<script>alert('dossier')</script>"


# Reading a dossier.


@dataclass(eq=False)
class Element:
    """One element of the page: its tag, attributes, text (entities decoded) and parent."""

    tag: str
    attrs: dict[str, str]
    parent: Element | None
    text: str = ""
    parts: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def within(self, outer: Element) -> bool:
        parent = self.parent
        while parent is not None and parent is not outer:
            parent = parent.parent
        return parent is outer


class Page(HTMLParser):
    """Every element of a dossier, in document order; refuses unbalanced markup."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(document)
        self.close()
        assert not self._open, [e.tag for e in self._open]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent = self._open[-1] if self._open else None
        element = Element(tag, {name: value or "" for name, value in attrs}, parent)
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        element = self._open.pop()
        assert element.tag == tag, (element.tag, tag)
        element.text = "".join(element.parts)

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.parts.append(data)

    def by_id(self, id_: str) -> Element:
        [found] = [e for e in self.elements if e.attrs.get("id") == id_]
        return found

    def by_tag(self, tag: str, within: Element | None = None) -> list[Element]:
        return [e for e in self.inside(within) if e.tag == tag]

    def by_class(self, name: str, within: Element | None = None) -> list[Element]:
        return [e for e in self.inside(within) if name in e.classes]

    def inside(self, outer: Element | None) -> list[Element]:
        """The elements nested in ``outer`` (every element for None), in document order."""
        if outer is None:
            return self.elements
        return [e for e in self.elements if e.within(outer)]


@dataclass(frozen=True)
class Proof:
    """One event's proof as the file gives it."""

    leaf_index: int
    version: int
    record: bytes
    shown_leaf_hash: str
    path: list[bytes]


def proofs(page: Page) -> list[Proof]:
    found = []
    for proof in page.by_class("proof"):
        index = int(proof.attrs["data-leaf-index"])
        path = [bytes.fromhex(h) for h in proof.attrs["data-path"].split()]
        [listed] = page.by_class("audit-path", proof)
        shown = [code.text for code in page.by_tag("code", listed)]
        assert shown == [h.hex() for h in path]  # what people read is what machines read
        found.append(
            Proof(
                leaf_index=index,
                version=int(proof.attrs["data-version"]),
                record=page.by_id(f"record-{index}").text.encode(),
                shown_leaf_hash=page.by_class("leaf-hash", proof)[0].text,
                path=path,
            )
        )
    return found


def assert_every_proof_verifies(page: Page, key_text: str) -> list[Proof]:
    """Check the note with the key the ledger gives auditors, then each event's path."""
    assert page.by_id("verifier-key").text == key_text
    head = open_note(page.by_id("checkpoint-note").text, [parse_verifier_key(key_text)])
    found = proofs(page)
    assert found
    for proof in found:
        assert leaf_hash(proof.record).hex() == proof.shown_leaf_hash
        assert verify_inclusion(
            leaf_hash(proof.record), proof.leaf_index, head.size, proof.path, head.root
        )
    return found


def stored(record: bytes) -> dict[str, object]:
    """The stored state inside a leaf record."""
    state: dict[str, object] = json.loads(json.loads(record)["state"])
    return state


# Building people.


def opt_in(ledger: ConsentLedger, person: str, **details: object) -> None:
    values: dict[str, object] = {
        "business_id": BUSINESS,
        "identifier": person,
        "categories": ("offers", "order-updates"),
        "notice": "whatsapp-optin@1",
        "method": "web-form",
        **details,
    }
    ledger.opt_in(OptIn.model_validate(values))


def ada_story(ledger: ConsentLedger) -> None:
    """Ada: a paper form entered late, a change of categories, then STOP to offers."""
    opt_in(
        ledger,
        ADA,
        method="paper",
        actor="operator:chiara",
        collection_point="Shop, Via Roma 1",
        occurred_at=datetime.now(UTC) - timedelta(days=9),
        evidence=Evidence(text="Signed form no. 4411", ip="192.0.2.10"),
    )
    ledger.change_categories(
        ChangeCategories(
            business_id=BUSINESS,
            identifier=ADA,
            grant=("recommendations",),
            notice="whatsapp-optin@2",
            method="web-form",
        )
    )
    ledger.opt_out(
        OptOut(
            business_id=BUSINESS,
            identifier=ADA,
            categories=("offers",),
            method="whatsapp-thread",
            reason="replied STOP OFFERS",
        )
    )


def render_dossier(ledger: ConsentLedger, person: str, *, business_id: str) -> str:
    """What ``consent-ledger dossier`` does: sign a checkpoint, gather under it, render."""
    signed = ledger.checkpoint()
    return render_html(gather_dossier(ledger, person, business_id=business_id, checkpoint=signed))


def dossier_of(ledger: ConsentLedger, person: str = ADA) -> tuple[str, Page]:
    document = render_dossier(ledger, person, business_id=BUSINESS)
    return document, Page(document)


# The timeline.


def test_every_event_appears_with_its_times_method_and_actor(ledger: ConsentLedger) -> None:
    ada_story(ledger)
    history = ledger.get_history(ADA, business_id=BUSINESS)

    _, page = dossier_of(ledger)

    events = page.by_class("event")
    assert [(e.attrs["data-version"], e.attrs["data-event-type"]) for e in events] == [
        (str(entry.version), entry.event_type) for entry in history.entries
    ]
    for event, entry in zip(events, history.entries, strict=True):
        [recorded] = page.by_class("recorded", event)
        assert page.by_tag("time", recorded)[0].attrs["datetime"] == utc_text(entry.recorded_at)
        if entry.occurred_at is not None:
            [occurred] = page.by_class("occurred", event)
            assert page.by_tag("time", occurred)[0].attrs["datetime"] == utc_text(entry.occurred_at)
            assert page.by_class("method", event)[0].text == entry.method
            assert (entry.actor or "") in event.text


def test_the_timeline_shows_evidence_notice_reason_and_lateness(ledger: ConsentLedger) -> None:
    ada_story(ledger)

    _, page = dossier_of(ledger)

    opted_in, changed, opted_out = (page.by_id(f"event-{n}").text for n in (2, 3, 4))
    assert "Signed form no. 4411" in opted_in
    assert "192.0.2.10" in opted_in
    assert "Shop, Via Roma 1" in opted_in
    assert "recorded 9 d after it occurred" in opted_in
    assert content_hash(WHATSAPP_TEXT) in opted_in
    assert "whatsapp-optin@2" in changed
    assert "replied STOP OFFERS" in opted_out
    assert page.by_id("identifier").text == ADA_E164


# The notices.


def test_the_full_text_of_every_notice_agreed_to_appears_with_its_hash_checked(
    ledger: ConsentLedger,
) -> None:
    ada_story(ledger)

    _, page = dossier_of(ledger)

    notices = page.by_class("notice")
    assert [n.attrs["data-notice"] for n in notices] == ["whatsapp-optin@1", "whatsapp-optin@2"]
    for notice in notices:
        assert page.by_class("notice-text", notice)[0].text == WHATSAPP_TEXT
        assert page.by_class("recorded-hash", notice)[0].text == content_hash(WHATSAPP_TEXT)
        assert page.by_class("text-hash", notice)[0].text == content_hash(WHATSAPP_TEXT)
        assert notice.attrs["data-matches"] == "yes"
        assert "MATCHES" in page.by_class("verdict", notice)[0].text
    assert SMS_TEXT not in page.by_id("notices").text  # never agreed to


def test_the_notice_hash_is_in_the_proven_record_of_the_opt_in(ledger: ConsentLedger) -> None:
    """The text's hash is bound to the signed log: it is inside the proven leaf record."""
    ada_story(ledger)

    _, page = dossier_of(ledger)

    [record] = [p.record for p in proofs(page) if p.version == 2]  # the opt-in
    notice = stored(record)["notice"]
    assert isinstance(notice, dict)
    assert notice["content_hash"] == content_hash(page.by_class("notice-text")[0].text)


# Current state.


def test_the_current_state_is_right_after_an_opt_out(ledger: ConsentLedger) -> None:
    opt_in(ledger, ADA)
    ledger.opt_out(
        OptOut(business_id=BUSINESS, identifier=ADA, categories=("offers",), method="sms-keyword")
    )

    _, page = dossier_of(ledger)

    rows = {
        row.attrs["data-category"]: (row.attrs["data-state"], row.attrs["data-event-version"])
        for table in page.by_class("states")
        for row in page.by_tag("tr", table)
        if "data-category" in row.attrs
    }
    assert rows == {"offers": ("withdrawn", "3"), "order-updates": ("granted", "2")}


def test_a_grant_dated_before_its_notice_was_published_is_flagged(ledger: ConsentLedger) -> None:
    opt_in(ledger, ADA, occurred_at=datetime(2026, 1, 15, tzinfo=UTC))

    _, page = dossier_of(ledger)

    flag = " ".join(page.by_class("before-notice")[0].text.split())
    assert flag.startswith("dated before whatsapp-optin@1 was published in the ledger")


def test_a_later_grant_beside_an_all_withdrawal_is_explained(ledger: ConsentLedger) -> None:
    opt_in(ledger, ADA, occurred_at=datetime.now(UTC) - timedelta(days=9))
    ledger.opt_out(
        OptOut(
            business_id=BUSINESS,
            identifier=ADA,
            method="sms-keyword",
            occurred_at=datetime.now(UTC) - timedelta(days=5),
        )
    )
    opt_in(ledger, ADA, categories=("offers",))

    _, page = dossier_of(ledger)

    note = " ".join(page.by_id("overridden-3").text.split())
    assert note.startswith("#3 OptedOut withdrew every category on whatsapp at")
    assert note.endswith("what was granted after it stands: offers (granted by #4 OptedIn).")


def test_the_state_is_given_for_the_moment_asked(ledger: ConsentLedger) -> None:
    opt_in(ledger, ADA)
    before_opt_out = datetime.now(UTC)
    ledger.opt_out(OptOut(business_id=BUSINESS, identifier=ADA, method="sms-keyword"))

    found = gather_dossier(
        ledger, ADA, business_id=BUSINESS, checkpoint=ledger.checkpoint(), now=before_opt_out
    )

    assert {str(c.state) for c in found.status.consents} == {"granted"}
    assert len(found.history.entries) == 3  # the timeline still has every event


def test_platform_marketing_stops_show_in_the_current_state(ledger: ConsentLedger) -> None:
    opt_in(ledger, ADA)
    ledger.record_platform_preference(
        RecordPlatformPreference(
            business_id=BUSINESS, identifier=ADA, stopped=True, method="platform"
        )
    )

    _, page = dossier_of(ledger)

    [row] = [e for e in page.elements if e.tag == "tr" and "data-stopped" in e.attrs]
    assert (row.attrs["data-sender"], row.attrs["data-stopped"]) == ("", "yes")


# The integrity proof.


def test_each_embedded_proof_verifies_against_the_signed_note(ledger: ConsentLedger) -> None:
    ada_story(ledger)
    opt_in(ledger, BRUNO)  # more leaves: the paths have some length

    _, page = dossier_of(ledger)

    found = assert_every_proof_verifies(page, ledger.verifier_key().text)
    subject_id = str(ledger.find_subject(ADA, business_id=BUSINESS))
    assert [p.version for p in found] == [1, 2, 3, 4]
    assert {json.loads(p.record)["stream_id"] for p in found} == {subject_id}


def test_a_changed_record_no_longer_verifies(ledger: ConsentLedger) -> None:
    """The check the test relies on fails when one byte of a record changes."""
    ada_story(ledger)
    _, page = dossier_of(ledger)
    head = open_note(
        page.by_id("checkpoint-note").text, [parse_verifier_key(page.by_id("verifier-key").text)]
    )
    proof = proofs(page)[1]

    forged = proof.record.replace(b'"method\\":\\"paper\\"', b'"method\\":\\"ivr\\"')

    assert forged != proof.record
    assert not verify_inclusion(
        leaf_hash(forged), proof.leaf_index, head.size, proof.path, head.root
    )


def test_the_dossier_holds_the_checkpoint_signed_before_it(ledger: ConsentLedger) -> None:
    ada_story(ledger)

    found = gather_dossier(ledger, ADA, business_id=BUSINESS, checkpoint=ledger.checkpoint())

    assert found.checkpoint.size == ledger.event_log.head()
    assert ledger.verify().ok


def test_gathering_a_dossier_writes_nothing(ledger: ConsentLedger) -> None:
    """No event, leaf or checkpoint is added, though the log grew since the checkpoint."""
    ada_story(ledger)
    signed = ledger.checkpoint()
    opt_in(ledger, BRUNO)  # after the checkpoint: a gatherer that signed would cover it
    evidence = ledger.tamper_evidence

    def written() -> tuple[int, list[object], list[object]]:
        return (
            ledger.event_log.head(),
            list(evidence.checkpoints()),
            list(evidence.stored_leaves()),
        )

    before = written()

    found = gather_dossier(ledger, ADA, business_id=BUSINESS, checkpoint=signed)

    assert written() == before
    assert found.checkpoint == signed
    assert len(found.proofs) == 4


def test_a_checkpoint_older_than_the_persons_latest_event_is_refused(
    ledger: ConsentLedger,
) -> None:
    ada_story(ledger)
    signed = ledger.checkpoint()
    ledger.opt_out(OptOut(business_id=BUSINESS, identifier=ADA, method="sms-keyword"))
    subject_id = ledger.find_subject(ADA, business_id=BUSINESS)

    with pytest.raises(
        CheckpointCoverageError,
        match=(
            rf"^checkpoint {signed.size} does not cover event #5 of subject {subject_id} "
            r"\(log position \d+\), recorded after it was signed: sign a new checkpoint"
        ),
    ):
        gather_dossier(ledger, ADA, business_id=BUSINESS, checkpoint=signed)


def test_another_ledgers_checkpoint_is_refused(ledger: ConsentLedger, stores: StoreFactory) -> None:
    ada_story(ledger)
    other, _, _ = new_ledger(stores)
    try:
        ada_story(other)
        foreign = other.checkpoint()
    finally:
        other.close()

    with pytest.raises(CheckpointCoverageError, match=r"was signed for .*, not this ledger"):
        gather_dossier(ledger, ADA, business_id=BUSINESS, checkpoint=foreign)


# Escaping and privacy.


def test_user_supplied_text_is_escaped(ledger: ConsentLedger) -> None:
    ledger.register_business(
        RegisterBusiness(business_id="evil", display_name=f"Evil {HOSTILE} Ltd")
    )
    notice_text = f"Evil {HOSTILE} Ltd may send me offers. {HOSTILE}\nReply STOP."
    ledger.publish_notice(
        PublishNotice(
            business_id="evil",
            notice_id="optin",
            language="en",
            categories=("offers",),
            text=notice_text,
        )
    )
    ledger.opt_in(
        OptIn(
            business_id="evil",
            identifier=ADA,
            categories=("offers",),
            notice="optin@1",
            method="web-form",
            actor=f"operator:{HOSTILE}",
            collection_point=f'https://evil.example/"><img src=x onerror=alert(1)>{HOSTILE}',
            evidence=Evidence(text=HOSTILE, user_agent=HOSTILE),
        )
    )
    ledger.opt_out(
        OptOut(business_id="evil", identifier=ADA, method="whatsapp-thread", reason=HOSTILE)
    )

    document = render_dossier(ledger, ADA, business_id="evil")
    page = Page(document)

    assert "<script" not in document.lower()
    assert "<img src=x" not in document
    assert {e.tag for e in page.elements} <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4",
        "p", "strong", "em", "code", "table", "colgroup", "col", "thead", "tbody", "tr", "th",
        "td", "section", "article", "div", "pre", "nav", "ol", "li", "a", "time", "span",
    }  # fmt: skip
    assert page.by_class("notice-text")[0].text == notice_text
    assert HOSTILE in page.by_class("evidence-text")[0].text
    assert HOSTILE in page.by_class("reason")[0].text


def test_the_file_is_self_contained(ledger: ConsentLedger, tmp_path: Path) -> None:
    picture = tmp_path / "form.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    drawing = tmp_path / "form.svg"
    drawing.write_text(f"<svg xmlns='http://www.w3.org/2000/svg'>{HOSTILE}</svg>")
    opt_in(ledger, ADA, evidence=Evidence.from_file(picture))
    opt_in(ledger, ADA, evidence=Evidence.from_file(drawing))

    _, page = dossier_of(ledger)

    links = [e.attrs[name] for e in page.elements for name in ("href", "src") if name in e.attrs]
    assert all(link.startswith(("#", "data:image/png;base64,")) for link in links), links
    [image] = [e for e in page.elements if e.tag == "img"]  # the PNG only: SVG can hold script
    assert base64.b64decode(image.attrs["src"].split(",")[1]) == picture.read_bytes()
    assert "form.svg" in page.by_id("event-3").text
    assert not [e for e in page.elements if e.tag in {"script", "link", "iframe", "object"}]
    [policy] = [e for e in page.elements if e.attrs.get("http-equiv")]
    assert "default-src 'none'" in policy.attrs["content"]


def test_another_persons_data_is_absent(ledger: ConsentLedger) -> None:
    ada_story(ledger)
    ledger.opt_in(
        OptIn(
            business_id=BUSINESS,
            identifier=BRUNO,
            channel="sms",
            categories=("offers",),
            notice="sms-optin@1",
            method="sms-keyword",
            evidence=Evidence(text="Bruno texted YES", ip="198.51.100.7"),
        )
    )
    bruno = str(ledger.find_subject(BRUNO, business_id=BUSINESS))

    document, page = dossier_of(ledger)

    for needle in (BRUNO, BRUNO_E164, "2025550143", "Bruno texted YES", "198.51.100.7", bruno):
        assert needle not in document
    assert SMS_TEXT not in document
    ada = str(ledger.find_subject(ADA, business_id=BUSINESS))
    assert {json.loads(p.record)["stream_id"] for p in proofs(page)} == {ada}


def test_an_unknown_person_has_no_dossier(ledger: ConsentLedger) -> None:
    with pytest.raises(SubjectNotFoundError, match="no consent record for"):
        render_dossier(ledger, BRUNO, business_id=BUSINESS)


# Erasure.


def forget_everyone(db: str) -> None:
    """Destroy every subject's data key behind the ledger's back (crypto-shredding)."""
    store = parse_store(db)
    if not isinstance(store, PostgresStore):
        with contextlib.closing(sqlite3.connect(db)) as lite, lite:
            lite.execute("DELETE FROM subject_keys")
        return
    with psycopg.connect(
        host=store.host, port=store.port, user=store.user, dbname=store.dbname
    ) as connection:
        table = sql.SQL("{}.consentledger_subject_keys").format(sql.Identifier(store.schema))
        connection.execute(sql.SQL("DELETE FROM {}").format(table))


def test_an_erased_person_still_gets_a_dossier_saying_erased(
    ledger_at: tuple[ConsentLedger, str, Path | None],
) -> None:
    ledger, db, key_file = ledger_at
    ada_story(ledger)
    forget_everyone(db)
    reopened = ConsentLedger.open(db, key_file=key_file)

    try:
        document, page = dossier_of(reopened)
        key_text = reopened.verifier_key().text
    finally:
        reopened.close()

    assert page.by_id("identifier").text == "erased"
    assert "erased" in page.by_id("erased").text.lower()
    assert "erased" in page.by_id("event-2").text  # its evidence
    assert "erased" in page.by_id("event-4").text  # its reason
    for needle in (ADA, ADA_E164, "Signed form no. 4411", "192.0.2.10", "replied STOP OFFERS"):
        assert needle not in document
    assert [e.attrs["data-event-type"] for e in page.by_class("event")] == [
        "SubjectRegistered",
        "OptedIn",
        "CategoriesChanged",
        "OptedOut",
    ]
    assert page.by_class("notice-text")[0].text == WHATSAPP_TEXT
    assert len(assert_every_proof_verifies(page, key_text)) == 4


def test_the_header_names_the_business_the_ledger_and_the_subject(ledger: ConsentLedger) -> None:
    opt_in(ledger, ADA)

    found = gather_dossier(ledger, ADA, business_id=BUSINESS, checkpoint=ledger.checkpoint())
    page = Page(render_dossier(ledger, ADA, business_id=BUSINESS))

    [header] = page.by_tag("header")
    assert BUSINESS_NAME in header.text
    assert ledger.event_log.ledger_id in header.text
    assert page.by_class("subject-id")[0].text == str(found.subject_id)


def test_linked_identifiers_and_platform_signals_appear_in_the_timeline(
    ledger: ConsentLedger,
) -> None:
    ada_story(ledger)
    ledger.link_identifiers(
        BUSINESS,
        [Identifier.parse(ADA), Identifier.parse("wa:447700900123")],
        provenance=Provenance(
            method=Method.PLATFORM, actor="whatsapp", occurred_at=datetime.now(UTC)
        ),
    )
    ledger.record_once(
        RecordSignal(
            business_id=BUSINESS,
            identifier=ADA,
            signal="help",
            detail="replied 'help': asked for help, nothing changes",
        ),
        signal="wamid.HELP1",
    )

    _, page = dossier_of(ledger)

    linked, reported = (page.by_id(f"event-{n}").text for n in (5, 6))
    assert "wa:447700900123 (linked: now also found by it)" in linked
    assert "replied 'help': asked for help, nothing changes" in reported
