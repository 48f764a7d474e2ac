"""Tamper evidence on a live ledger: checkpoints sign the log, verify names what changed.

Each tamper test makes one change to one stored row behind the ledger's back, as someone
with access to the database could, and requires ``verify`` to fail and to name the first
position that is not as it was signed.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from consent_ledger import ConsentLedger, Identifier, OptIn, OptOut
from consent_ledger.evidence import growth, integrity
from consent_ledger.evidence.checkpoint import VerifierKey, sign
from consent_ledger.evidence.integrity import IntegrityError, ProvenEvent, SignedCheckpoint
from consent_ledger.evidence.leaves import leaf_hashes, leaf_record, stored_leaf_hashes
from consent_ledger.evidence.merkle import (
    TreeBuilder,
    consistency_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from consent_ledger.storage.sqlite import select_stored_between
from consent_ledger.storage.stores import PostgresStore, SQLiteStore, parse_store

from .conftest import BUSINESS, StoreFactory, new_ledger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from consent_ledger.storage.log import StoredRow


def record(ledger: ConsentLedger, people: int, *, start: int = 0) -> None:
    """Each person opts in to WhatsApp offers; every other one then opts out."""
    for i in range(start, start + people):
        number = Identifier.parse(f"+44 7700 900{i:03d}")
        ledger.opt_in(
            OptIn(
                business_id=BUSINESS,
                identifier=number,
                categories=("offers",),
                notice="whatsapp-optin@1",
                method="web-form",
            )
        )
        if i % 2:
            ledger.opt_out(OptOut(business_id=BUSINESS, identifier=number, method="sms-keyword"))


class RawStore:
    """The ledger's event table, reached behind the ledger's back."""

    def __init__(self, db: str) -> None:
        store = parse_store(db)
        self.postgres = isinstance(store, PostgresStore)
        self.table: sql.Composable
        self.keys: sql.Composable
        if isinstance(store, PostgresStore):
            self.connection: Any = psycopg.connect(
                host=store.host, port=store.port, user=store.user, dbname=store.dbname
            )
            schema = sql.Identifier(store.schema)
            self.table = sql.SQL("{}.consentledger_events").format(schema)
            self.keys = sql.SQL("{}.consentledger_subject_keys").format(schema)
            self.id = sql.SQL("notification_id")
        else:
            self.connection = sqlite3.connect(db)
            self.table = sql.SQL("stored_events")
            self.keys = sql.SQL("subject_keys")
            self.id = sql.SQL("rowid")

    def execute(self, statement: sql.Composable, params: tuple[Any, ...] = ()) -> list[Any]:
        text = statement.as_string(None) if not self.postgres else statement
        if not self.postgres:
            text = str(text).replace("%s", "?")
        cursor = self.connection.execute(text, params)
        rows = cursor.fetchall() if cursor.description else []
        self.connection.commit()
        return list(rows)

    def positions(self) -> list[int]:
        query = sql.SQL("SELECT {id} FROM {t} ORDER BY {id}").format(id=self.id, t=self.table)
        return [row[0] for row in self.execute(query)]

    def row(self, position: int) -> tuple[Any, ...]:
        query = sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {t} WHERE {id} = %s"
        ).format(id=self.id, t=self.table)
        [found] = self.execute(query, (position,))
        return tuple(found)

    def set_state(self, position: int, state: bytes) -> None:
        query = sql.SQL("UPDATE {t} SET state = %s WHERE {id} = %s").format(
            id=self.id, t=self.table
        )
        self.execute(query, (state, position))

    def delete(self, position: int) -> None:
        query = sql.SQL("DELETE FROM {t} WHERE {id} = %s").format(id=self.id, t=self.table)
        self.execute(query, (position,))

    def insert(self, position: int, row: tuple[Any, ...]) -> None:
        query = sql.SQL(
            "INSERT INTO {t} ({id}, originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s, %s)"
        ).format(id=self.id, t=self.table)
        self.execute(query, (position, *row))

    def swap(self, first: int, second: int) -> None:
        """Exchange two rows' events, keeping their positions."""
        a, b = self.row(first), self.row(second)
        self.delete(first)
        self.delete(second)
        self.insert(first, b)
        self.insert(second, a)

    def forget(self, subject_id: uuid.UUID) -> None:
        """Destroy one subject's data key."""
        key = str(subject_id) if self.postgres else subject_id.hex
        self.execute(sql.SQL("DELETE FROM {} WHERE subject_id = %s").format(self.keys), (key,))

    def forget_everyone(self) -> None:
        """Destroy every subject's data key."""
        self.execute(sql.SQL("DELETE FROM {}").format(self.keys))

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def raw(ledger_at: tuple[ConsentLedger, str, Path | None]) -> Iterator[RawStore]:
    store = RawStore(ledger_at[1])
    yield store
    store.close()


def flip_a_byte(state: bytes) -> bytes:
    """The same event with one character of its recorded time changed (to an earlier year).

    Earlier, not later: a bundle of an event recorded after the bundle was made fails
    for that alone, and some tests need the change found only by the hashes.
    """
    at = state.index(b'"timestamp":"') + len(b'"timestamp":"') + 3  # the year's last digit
    return state[:at] + (b"4" if state[at : at + 1] != b"4" else b"3") + state[at + 1 :]


# Signing and verifying.


def test_a_checkpoint_covers_every_event_and_verifies(ledger: ConsentLedger) -> None:
    record(ledger, 4)
    head = ledger.event_log.head()

    signed = ledger.checkpoint()
    verification = ledger.verify()

    assert signed.size == head  # SQLite positions are dense: one leaf per position
    assert signed.checkpoint.origin == f"consent-ledger/{ledger.event_log.ledger_id}"
    assert verification.ok, verification.problem
    assert (verification.events, verification.covered, verification.unchecked) == (head, head, 0)


def test_events_after_the_latest_checkpoint_are_reported_unchecked(ledger: ConsentLedger) -> None:
    record(ledger, 2)
    covered = ledger.checkpoint().size
    record(ledger, 1, start=2)

    verification = ledger.verify()

    assert verification.ok
    assert verification.covered == covered
    assert verification.unchecked == ledger.event_log.head() - covered == 2


def test_checkpointing_again_with_nothing_new_signs_nothing_new(ledger: ConsentLedger) -> None:
    record(ledger, 1)
    first = ledger.checkpoint()

    again = ledger.checkpoint()

    assert again == first
    assert len(ledger.tamper_evidence.checkpoints()) == 1


def test_each_checkpoint_is_consistent_with_every_earlier_one(ledger: ConsentLedger) -> None:
    sizes = []
    for batch in range(3):
        record(ledger, 2, start=10 * batch)
        sizes.append(ledger.checkpoint())
    leaves = [digest for _, digest in ledger.tamper_evidence.stored_leaves()]

    for old in sizes:
        for new in sizes:
            if old.size <= new.size:
                proof = consistency_proof(leaves[: new.size], old.size)
                assert verify_consistency(
                    old.size, new.size, old.checkpoint.root, new.checkpoint.root, proof
                )


def test_erasing_a_person_leaves_every_proof_valid(ledger: ConsentLedger, raw: RawStore) -> None:
    """Destroying a subject's data key (crypto-shredding) changes no stored event."""
    record(ledger, 3)
    ledger.checkpoint()

    raw.forget_everyone()

    assert ledger.verify().ok


def test_the_verifier_key_names_the_ledger(ledger: ConsentLedger) -> None:
    key = ledger.verifier_key()

    assert key.name == f"consent-ledger/{ledger.event_log.ledger_id}"
    assert VerifierKey.from_public_key(key.name, ledger._signing_key().public_key()) == key


# Tampering with the log.


def tampered(ledger: ConsentLedger, raw: RawStore) -> tuple[int, int, int]:
    """A checkpointed ledger; returns three checkpointed positions in the middle."""
    record(ledger, 6)
    ledger.checkpoint()
    positions = raw.positions()
    return positions[5], positions[8], positions[11]


def assert_fails_at(ledger: ConsentLedger, position: int) -> None:
    verification = ledger.verify()

    assert not verification.ok
    assert verification.position == position, verification.problem
    assert verification.problem is not None
    assert f"position {position} " in verification.problem


def test_a_changed_byte_in_one_event_is_found(ledger: ConsentLedger, raw: RawStore) -> None:
    _, position, _ = tampered(ledger, raw)
    state = bytes(raw.row(position)[3])

    raw.set_state(position, flip_a_byte(state))

    assert_fails_at(ledger, position)


def test_a_deleted_event_is_found(ledger: ConsentLedger, raw: RawStore) -> None:
    _, position, _ = tampered(ledger, raw)

    raw.delete(position)

    assert_fails_at(ledger, position)


def test_a_deleted_last_event_is_found(ledger: ConsentLedger, raw: RawStore) -> None:
    tampered(ledger, raw)
    last = raw.positions()[-1]

    raw.delete(last)

    assert_fails_at(ledger, last)


def test_an_inserted_event_is_found(ledger: ConsentLedger, raw: RawStore) -> None:
    """A row slipped in before the first event (the only free position on SQLite)."""
    tampered(ledger, raw)
    stream, _, topic, state = raw.row(raw.positions()[-1])
    forged = (uuid.uuid4().hex if not raw.postgres else uuid.uuid4(), 1, topic, state)
    del stream

    raw.insert(0, forged)

    assert_fails_at(ledger, 0)


def test_two_swapped_events_are_found(ledger: ConsentLedger, raw: RawStore) -> None:
    first, _, second = tampered(ledger, raw)

    raw.swap(first, second)

    assert_fails_at(ledger, first)


def test_an_altered_leaf_index_alone_is_reported(
    ledger_at: tuple[ConsentLedger, str, Path | None],
) -> None:
    """The log is intact but the kept leaves are not: a thorough verify says so, and where."""
    ledger = ledger_at[0]
    record(ledger, 3)
    ledger.checkpoint()
    evidence = ledger.tamper_evidence
    with evidence.database.transaction() as cursor:
        cursor.execute(
            f"UPDATE {evidence.leaves} SET leaf_hash = ? WHERE leaf_index = 4", (b"\0" * 32,)
        )
    [(position,)] = evidence.database.query(
        f"SELECT position FROM {evidence.leaves} WHERE leaf_index = 4"
    )

    quick = ledger.verify()
    verification = ledger.verify(thorough=True)

    assert quick.ok  # the signed roots prove the log: the leaf index is not the proof
    assert not verification.ok
    assert verification.position == position
    assert "leaf index was altered" in (verification.problem or "")
    assert f"position {position} has another hash in the leaf index" in (verification.problem or "")


def test_a_changed_event_with_its_leaf_rewritten_still_fails(
    ledger: ConsentLedger, raw: RawStore
) -> None:
    """Rewriting the kept leaf to match does not help: the signed root still differs."""
    _, position, _ = tampered(ledger, raw)
    stream, version, topic, state = raw.row(position)
    changed = flip_a_byte(bytes(state))
    raw.set_state(position, changed)
    evidence = ledger.tamper_evidence
    row = (position, str(uuid.UUID(hex=str(stream))), version, topic, changed)
    with evidence.database.transaction() as cursor:
        cursor.execute(
            f"UPDATE {evidence.leaves} SET leaf_hash = ? WHERE position = ?",
            (leaf_hash(leaf_record(row)), position),
        )

    verification = ledger.verify()

    assert not verification.ok
    assert "cannot name the position" in (verification.problem or "")


# Checkpoints that are not what the ledger signed.


def test_a_checkpoint_re_signed_with_another_key_is_refused(ledger: ConsentLedger) -> None:
    record(ledger, 2)
    signed = ledger.checkpoint()
    evidence = ledger.tamper_evidence
    forged = sign(signed.checkpoint, signed.checkpoint.origin, Ed25519PrivateKey.generate())
    with evidence.database.transaction() as cursor:
        cursor.execute(f"UPDATE {evidence.checkpoints_table} SET note = ?", (forged,))

    verification = ledger.verify()

    assert not verification.ok
    assert f"checkpoint {signed.size}" in (verification.problem or "")


def test_a_log_verified_with_another_ledgers_key_fails(ledger: ConsentLedger) -> None:
    record(ledger, 1)
    ledger.checkpoint()
    stranger = VerifierKey.from_public_key(
        ledger.verifier_key().name, Ed25519PrivateKey.generate().public_key()
    )

    assert not ledger.verify([stranger]).ok


# The leaf record is RFC 8785 JSON.

stored_rows = st.tuples(
    st.integers(0, 2**53 - 1),
    st.uuids().map(str),
    st.integers(1, 2**53 - 1),
    st.text(),
    st.text().map(str.encode),
)


def jcs(row: StoredRow) -> bytes:
    """The leaf record as the rfc8785 package writes it: the reference."""
    position, stream_id, version, topic, state = row
    return rfc8785.dumps(
        {
            "v": 1,
            "position": position,
            "stream_id": stream_id,
            "stream_version": version,
            "topic": topic,
            "state": state.decode(),
        }
    )


@given(stored_rows)
def test_a_leaf_record_is_the_rfc8785_canonical_json_of_the_event(row: StoredRow) -> None:
    assert leaf_record(row) == jcs(row)


def test_leaf_records_of_real_events_are_canonical(ledger: ConsentLedger) -> None:
    record(ledger, 2)
    rows = ledger.event_log.read_stored(0, 100)

    assert rows
    for row in rows:
        assert str(uuid.UUID(row[1])) == row[1]
        assert leaf_record(row) == jcs(row)


# Proofs for chosen events.


def test_a_persons_events_are_proven_in_the_signed_tree(ledger: ConsentLedger) -> None:
    record(ledger, 5)
    signed = ledger.checkpoint()
    evidence = ledger.tamper_evidence
    person = ledger.find_subject("+44 7700 900003", business_id=BUSINESS)
    assert person is not None
    rows = ledger.event_log.read_stream(person)

    proven = evidence.prove(rows, signed, evidence.tree(signed))

    assert [row[2] for row in rows] == [1, 2, 3]  # registered, opted in, opted out
    assert_proven(proven, signed)


def test_an_event_after_the_checkpoint_cannot_be_proven(ledger: ConsentLedger) -> None:
    record(ledger, 1)
    signed = ledger.checkpoint()
    record(ledger, 1, start=1)
    evidence = ledger.tamper_evidence
    person = ledger.find_subject("+44 7700 900001", business_id=BUSINESS)
    assert person is not None

    with pytest.raises(IntegrityError, match="not covered by checkpoint"):
        evidence.prove(ledger.event_log.read_stream(person), signed, evidence.tree(signed))


def test_a_changed_event_cannot_be_proven(ledger: ConsentLedger, raw: RawStore) -> None:
    _, position, _ = tampered(ledger, raw)
    signed = ledger.tamper_evidence.latest()
    assert signed is not None
    raw.set_state(position, flip_a_byte(bytes(raw.row(position)[3])))
    [row] = ledger.event_log.read_stored(position - 1, 1)
    evidence = ledger.tamper_evidence

    with pytest.raises(IntegrityError, match=f"position {position} differs"):
        evidence.prove([row], signed, evidence.tree(signed))


@pytest.fixture
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> int:
    """Tiles of 4 leaves, so a few people's events fill several."""
    monkeypatch.setattr(integrity, "TILE", 4)
    monkeypatch.setattr(growth, "TILE", 4)  # where checkpoints keep tiles
    return 4


def assert_proven(proven: list[ProvenEvent], signed: SignedCheckpoint) -> None:
    """Each event's audit path leads from its leaf to the signed root."""
    assert proven
    for event in proven:
        assert verify_inclusion(
            leaf_hash(event.record),
            event.leaf_index,
            signed.size,
            event.path,
            signed.checkpoint.root,
        )


def every_event_is_proven(ledger: ConsentLedger, signed: SignedCheckpoint) -> None:
    evidence = ledger.tamper_evidence
    rows = ledger.event_log.read_stored(0, signed.size)
    assert_proven(evidence.prove(rows, signed, evidence.tree(signed)), signed)


def kept_tiles(ledger: ConsentLedger) -> list[bytes]:
    evidence = ledger.tamper_evidence
    rows = evidence.database.query(f"SELECT tile_root FROM {evidence.tiles} ORDER BY tile_index")
    return [bytes(r) for (r,) in rows]


def test_each_complete_tile_is_kept_as_checkpoints_grow(
    ledger: ConsentLedger, small_tiles: int
) -> None:
    for start in (0, 3, 4, 9):  # 5, 2, 8 and 2 events: tiles completed across checkpoints
        record(ledger, {0: 3, 3: 1, 4: 5, 9: 1}[start], start=start)
        signed = ledger.checkpoint()
    leaves = [digest for _, digest in ledger.tamper_evidence.stored_leaves()]

    assert kept_tiles(ledger) == [
        root(leaves[i : i + small_tiles]) for i in range(0, len(leaves) - 3, small_tiles)
    ]
    every_event_is_proven(ledger, signed)


def checkpointed_without_tiles(ledger: ConsentLedger, where: str = "") -> SignedCheckpoint:
    """Five people checkpointed, then the kept tiles (``where`` they are) dropped."""
    record(ledger, 5)
    signed = ledger.checkpoint()
    evidence = ledger.tamper_evidence
    with evidence.database.transaction() as cursor:
        cursor.execute(f"DELETE FROM {evidence.tiles} {where}")
    return signed


def test_a_ledger_checkpointed_before_tiles_were_kept_still_proves_and_gains_them(
    ledger: ConsentLedger, small_tiles: int
) -> None:
    signed = checkpointed_without_tiles(ledger)

    every_event_is_proven(ledger, signed)
    record(ledger, 1, start=5)
    grown = ledger.checkpoint()

    assert len(kept_tiles(ledger)) == grown.size // small_tiles
    every_event_is_proven(ledger, grown)


def test_a_missing_tile_is_hashed_from_its_leaves(ledger: ConsentLedger, small_tiles: int) -> None:
    signed = checkpointed_without_tiles(ledger, "WHERE tile_index = 1")

    every_event_is_proven(ledger, signed)
    assert len(kept_tiles(ledger)) == signed.size // small_tiles - 1


def test_checkpointing_again_from_nothing_keeps_tiles_of_the_new_leaves(
    ledger: ConsentLedger, small_tiles: int
) -> None:
    """Leaves and checkpoints dropped (as a benchmark does): tiles follow the new leaves."""
    record(ledger, 5)
    first = ledger.checkpoint()
    evidence = ledger.tamper_evidence
    with evidence.database.transaction() as cursor:
        cursor.execute(f"DELETE FROM {evidence.leaves}")
        cursor.execute(f"DELETE FROM {evidence.checkpoints_table}")

    again = ledger.checkpoint()

    assert again.checkpoint.root == first.checkpoint.root
    assert len(kept_tiles(ledger)) == again.size // small_tiles
    every_event_is_proven(ledger, again)


@pytest.mark.usefixtures("small_tiles")
def test_changed_tile_roots_are_not_trusted(ledger: ConsentLedger) -> None:
    """Tiles only spare hashing: proofs still come out right, from the leaves."""
    signed = checkpointed_without_tiles(ledger)
    ledger.checkpoint()  # nothing new: the missing tiles are kept again
    evidence = ledger.tamper_evidence
    with evidence.database.transaction() as cursor:
        cursor.execute(f"UPDATE {evidence.tiles} SET tile_root = ?", (b"\0" * 32,))

    every_event_is_proven(ledger, signed)


@pytest.mark.usefixtures("small_tiles")
@pytest.mark.parametrize(
    ("change", "params", "problem"),
    [
        ("UPDATE {} SET leaf_hash = ? WHERE leaf_index = 1", (b"\0" * 32,), "do not prove"),
        ("DELETE FROM {} WHERE leaf_index = 1", (), "kept leaves 0 to 3 are incomplete"),
    ],
    ids=["changed", "deleted"],
)
def test_no_proof_is_given_from_a_damaged_tile(
    ledger: ConsentLedger, change: str, params: tuple[bytes, ...], problem: str
) -> None:
    """The tile roots still match the checkpoint; a leaf inside a tile does not."""
    record(ledger, 5)
    signed = ledger.checkpoint()
    evidence = ledger.tamper_evidence
    [first] = ledger.event_log.read_stored(0, 1)  # leaf 0: its path needs leaf 1
    with evidence.database.transaction() as cursor:
        cursor.execute(change.format(evidence.leaves), params)

    with pytest.raises(IntegrityError, match=problem):
        evidence.prove([first], signed, evidence.tree(signed))


@pytest.mark.usefixtures("small_tiles")
def test_a_changed_kept_leaf_is_refused(ledger: ConsentLedger) -> None:
    record(ledger, 5)
    signed = ledger.checkpoint()
    evidence = ledger.tamper_evidence
    with evidence.database.transaction() as cursor:
        cursor.execute(
            f"UPDATE {evidence.leaves} SET leaf_hash = ? WHERE leaf_index = 1", (b"\0" * 32,)
        )
        cursor.execute(f"DELETE FROM {evidence.tiles}")

    with pytest.raises(IntegrityError, match=f"do not match checkpoint {signed.size}"):
        evidence.tree(signed)


# Checkpoints kept outside the ledger.


def rewrite_and_sign_again(ledger: ConsentLedger, raw: RawStore, position: int) -> None:
    """What the key's holder could do: change an event, drop the evidence, sign anew."""
    raw.set_state(position, flip_a_byte(bytes(raw.row(position)[3])))
    drop_evidence(ledger)
    ledger.checkpoint()


def drop_evidence(ledger: ConsentLedger) -> None:
    """Forget every leaf and checkpoint the ledger kept."""
    evidence = ledger.tamper_evidence
    with evidence.database.transaction() as cursor:
        cursor.execute(f"DELETE FROM {evidence.leaves}")
        cursor.execute(f"DELETE FROM {evidence.checkpoints_table}")


def test_a_log_rewritten_and_signed_again_fails_against_a_kept_checkpoint(
    ledger: ConsentLedger, raw: RawStore
) -> None:
    _, position, _ = tampered(ledger, raw)
    kept = ledger.tamper_evidence.latest()
    assert kept is not None

    rewrite_and_sign_again(ledger, raw, position)

    assert ledger.verify().ok  # alone, the re-signed log looks whole
    verification = ledger.verify(since=[kept.note])
    assert not verification.ok
    assert f"checkpoint {kept.size}" in (verification.problem or "")
    assert f"does not match your kept checkpoint {kept.size}" in (verification.problem or "")


def test_a_kept_checkpoint_the_log_extends_verifies(ledger: ConsentLedger) -> None:
    record(ledger, 2)
    kept = ledger.checkpoint()
    record(ledger, 2, start=2)
    ledger.checkpoint()

    assert ledger.verify(since=[kept.note]).ok


def test_a_kept_checkpoint_beyond_the_log_fails(ledger: ConsentLedger, raw: RawStore) -> None:
    """The operator deleted the newest events and the checkpoints that covered them."""
    record(ledger, 3)
    kept = ledger.checkpoint()
    raw.delete(raw.positions()[-1])
    drop_evidence(ledger)

    verification = ledger.verify(since=[kept.note])

    assert not verification.ok
    assert f"checkpoint {kept.size}" in (verification.problem or "")


def test_a_kept_checkpoint_missing_from_the_ledger_fails(ledger: ConsentLedger) -> None:
    """The log still extends it, but the ledger no longer holds it: its table was altered."""
    record(ledger, 3)
    kept = ledger.checkpoint()
    record(ledger, 1, start=3)
    ledger.checkpoint()
    evidence = ledger.tamper_evidence
    with evidence.database.transaction() as cursor:
        cursor.execute(
            f"DELETE FROM {evidence.checkpoints_table} WHERE tree_size = ?", (kept.size,)
        )

    verification = ledger.verify(since=[kept.note])

    assert not verification.ok
    assert verification.problem == (
        f"your kept checkpoint {kept.size} is missing from the ledger's checkpoints "
        f"(ledger_checkpoints; the ledger holds 1 checkpoint, up to {ledger.event_log.head()} "
        "events): they were emptied or altered, though the log still matches it"
    )


@given(st.lists(stored_rows, max_size=5))
def test_leaf_hashes_in_bulk_are_each_leaf_hash_of_its_record(rows: list[StoredRow]) -> None:
    assert leaf_hashes(rows) == [leaf_hash(leaf_record(row)) for row in rows]


@given(st.lists(stored_rows, min_size=1, max_size=5))
def test_leaves_hashed_from_sqlites_bytes_are_the_leaves_of_the_rows_the_log_reads(
    rows: list[StoredRow],
) -> None:
    """SQLite logs are hashed from the stored bytes (ids as hex); PostgreSQL's as read."""
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB)"
    )
    as_read = [
        (n, stream, version, topic, state)
        for n, (_, stream, version, topic, state) in enumerate(rows, 1)
    ]
    connection.executemany(
        "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (n, uuid.UUID(stream).hex, version, topic, state)
            for n, stream, version, topic, state in as_read
        ],
    )

    stored = select_stored_between(connection, 0, len(rows))

    assert stored_leaf_hashes(stored) == leaf_hashes(as_read)


def test_a_checkpoint_is_refused_when_the_kept_tree_state_was_altered(
    ledger: ConsentLedger,
) -> None:
    """The next checkpoint grows from the last one: it must be the tree that was signed."""
    record(ledger, 2)
    signed = ledger.checkpoint()
    record(ledger, 1, start=2)
    evidence = ledger.tamper_evidence
    with evidence.database.transaction() as cursor:
        cursor.execute(f"UPDATE {evidence.checkpoints_table} SET frontier = ?", (b"\0" * 32 * 2,))

    with pytest.raises(IntegrityError, match=f"kept state of checkpoint {signed.size}"):
        ledger.checkpoint()
    assert len(evidence.checkpoints()) == 1


# Hashing in worker processes (large SQLite logs) finds exactly what one process finds.


def change_one(raw: RawStore, positions: list[int]) -> None:
    raw.set_state(positions[8], flip_a_byte(bytes(raw.row(positions[8])[3])))


def delete_one(raw: RawStore, positions: list[int]) -> None:
    raw.delete(positions[8])


def insert_one(raw: RawStore, positions: list[int]) -> None:
    stream, _, topic, state = raw.row(positions[3])
    raw.insert(0, (stream, 99, topic, state))


def swap_two(raw: RawStore, positions: list[int]) -> None:
    raw.swap(positions[5], positions[11])


def leave_alone(raw: RawStore, positions: list[int]) -> None:
    del raw, positions


TAMPERINGS = {f.__name__: f for f in (leave_alone, change_one, delete_one, insert_one, swap_two)}


@pytest.mark.parametrize("page", [4, 8192])
@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_workers_find_what_one_process_finds(
    tmp_path: Path, tampering: str, page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes hash SQLite logs (PostgreSQL logs are hashed in one process).

    With pages of 4 positions, whole pages join the tree as perfect subtrees, except
    where a checkpoint's size falls inside one.
    """
    monkeypatch.setattr("consent_ledger.evidence.leaves.PARALLEL_PAGE", page)
    ledger, db, _ = new_ledger(StoreFactory("sqlite", tmp_path))
    record(ledger, 3)
    ledger.checkpoint()  # a checkpoint inside a page, before the one tampered() signs
    raw = RawStore(db)
    tampered(ledger, raw)
    TAMPERINGS[tampering](raw, raw.positions())
    raw.close()
    evidence = ledger.tamper_evidence
    keys = [ledger.verifier_key()]

    alone = evidence.verify(keys, workers=1)
    subtrees = count_calls(monkeypatch, TreeBuilder, "append_subtree")
    with_workers = evidence.verify(keys, workers=2)

    ledger.close()
    assert with_workers == alone
    assert alone.ok == (tampering == "leave_alone")
    if page == 4:  # the test would prove nothing if no page went in whole
        assert subtrees() > 0


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> Callable[[], int]:
    """Count the calls to ``owner.name`` from now on (in this process)."""
    calls = [0]
    original = getattr(owner, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return lambda: calls[0]


def test_pages_taken_whole_sign_the_root_of_every_leaf(
    ledger: ConsentLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 4 events join the checkpoint's tree as perfect subtrees, hashed once."""
    monkeypatch.setattr("consent_ledger.evidence.leaves.PARALLEL_PAGE", 4)
    subtrees = count_calls(monkeypatch, TreeBuilder, "append_subtree")
    record(ledger, 6)

    signed = ledger.checkpoint()

    leaves = [digest for _, digest in ledger.tamper_evidence.stored_leaves()]
    assert signed.checkpoint.root == root(leaves)
    if isinstance(ledger.event_log.store, SQLiteStore):  # PostgreSQL's pages are hashed as read
        assert subtrees() > 0
