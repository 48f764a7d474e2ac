"""Bundles: written from a ledger, verified offline from the file alone."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consent_ledger.evidence.bundle import BundleVerification, verify_bundle
from consent_ledger.evidence.bundling import write_bundle
from consent_ledger.evidence.checkpoint import VerifierKey, sign
from consent_ledger.evidence.integrity import IntegrityError
from consent_ledger.evidence.merkle import leaf_hash

from .conftest import BUSINESS
from .test_integrity import RawStore, drop_evidence, flip_a_byte, record, tampered

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from consent_ledger import ConsentLedger


def bundle_of(ledger: ConsentLedger, positions: list[int] | None = None) -> list[bytes]:
    out = io.BytesIO()
    write_bundle(ledger, out.write, positions)
    return out.getvalue().splitlines(keepends=True)


def check(
    lines: list[bytes], ledger: ConsentLedger, since: list[str] | None = None
) -> BundleVerification:
    return verify_bundle(lines, [ledger.verifier_key()], since=since or [])


def person_positions(ledger: ConsentLedger, number: str) -> list[int]:
    subject = ledger.find_subject(number, business_id=BUSINESS)
    assert subject is not None
    return [row[0] for row in ledger.event_log.read_stream(subject)]


def change_event(line: bytes) -> bytes:
    """The same line with the first digit of the event's stream id changed."""
    at = line.index(b'"stream_id":"') + len(b'"stream_id":"')
    return line[:at] + (b"a" if line[at : at + 1] != b"a" else b"b") + line[at + 1 :]


# Bundles that verify.


def test_a_complete_bundle_verifies(ledger: ConsentLedger) -> None:
    record(ledger, 5)

    lines = bundle_of(ledger)
    result = check(lines, ledger)

    assert result.ok, result.problem
    assert result.complete
    assert result.events == result.size == ledger.event_log.head() == len(lines) - 1
    assert result.pinned


def test_a_persons_bundle_verifies_with_proofs_and_the_notices(ledger: ConsentLedger) -> None:
    record(ledger, 5)
    chosen = person_positions(ledger, "+44 7700 900003")

    lines = bundle_of(ledger, chosen)
    result = check(lines, ledger)

    assert result.ok, result.problem
    assert not result.complete
    assert result.events == len(chosen) == len(lines) - 1
    records = [orjson.loads(line)["record"] for line in lines[1:]]
    assert [r["position"] for r in records] == chosen


def test_a_bundle_verifies_on_a_machine_without_the_ledger(
    ledger_at: tuple[ConsentLedger, str, Path | None], tmp_path: Path
) -> None:
    ledger = ledger_at[0]
    record(ledger, 3)
    bundle = tmp_path / "far-away" / "ledger.bundle"
    bundle.parent.mkdir()
    bundle.write_bytes(b"".join(bundle_of(ledger)))
    key = ledger.verifier_key().text
    ledger.close()

    result = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "consent_ledger.cli", "verify", bundle.name, "--public-key", key],
        cwd=bundle.parent,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": ""},  # no ledger, no key, no settings
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("verified: ")


def test_a_bundle_extends_a_checkpoint_the_auditor_kept(ledger: ConsentLedger) -> None:
    record(ledger, 2)
    kept = ledger.checkpoint()
    record(ledger, 2, start=2)

    complete = check(bundle_of(ledger), ledger, [kept.note])
    partial = check(
        bundle_of(ledger, person_positions(ledger, "+44 7700 900003")), ledger, [kept.note]
    )

    assert complete.ok, complete.problem
    assert partial.ok, partial.problem
    assert complete.since == partial.since == [kept.size]


# Bundles that fail, and say where.


def test_a_changed_event_line_is_named(ledger: ConsentLedger) -> None:
    record(ledger, 4)
    lines = bundle_of(ledger)
    lines[6] = change_event(lines[6])
    position = orjson.loads(lines[6])["record"]["position"]

    result = check(lines, ledger)

    assert not result.ok
    assert result.line == 7
    assert result.position == position
    assert (
        f"line 7: the event at position {position} does not match its leaf hash" == result.problem
    )


def test_a_removed_event_line_is_named(ledger: ConsentLedger) -> None:
    record(ledger, 4)
    lines = bundle_of(ledger)
    del lines[4]

    result = check(lines, ledger)

    assert not result.ok
    assert result.problem == "line 5: leaf 3 is missing (found leaf 4)"


def test_swapped_event_lines_are_found(ledger: ConsentLedger) -> None:
    record(ledger, 4)
    lines = bundle_of(ledger)
    lines[3], lines[6] = lines[6], lines[3]

    assert not check(lines, ledger).ok


def test_a_changed_leaf_hash_with_its_event_fails_at_the_root(ledger: ConsentLedger) -> None:
    """Rewriting a line consistently (event and its listed hash) still misses the signed root."""
    record(ledger, 4)
    lines = bundle_of(ledger)
    line = orjson.loads(lines[6])
    cut = lines[6].index(b',"record":')
    changed = change_event(lines[6][cut + len(b',"record":') : -2])
    lines[6] = (
        b'{"leaf_index":%d,"leaf_hash":"%s","record":'
        % (line["leaf_index"], leaf_hash(changed).hex().encode())
        + changed
        + b"}\n"
    )

    result = check(lines, ledger)

    assert not result.ok
    assert "do not hash to the signed root" in (result.problem or "")


def test_a_proof_for_another_leaf_fails(ledger: ConsentLedger) -> None:
    record(ledger, 4)
    lines = bundle_of(ledger, person_positions(ledger, "+44 7700 900001"))
    event = orjson.loads(lines[1])
    event["leaf_index"] += 1
    record_bytes = lines[1][lines[1].index(b',"record":') + len(b',"record":') : -2]
    lines[1] = (
        orjson.dumps({k: v for k, v in event.items() if k != "record"})[:-1]
        + b',"record":'
        + record_bytes
        + b"}\n"
    )

    result = check(lines, ledger)

    assert not result.ok
    assert "is not in the signed tree" in (result.problem or "")


def test_a_bundle_signed_by_another_key_is_refused_when_the_key_is_pinned(
    ledger: ConsentLedger,
) -> None:
    record(ledger, 2)
    lines = bundle_of(ledger)
    header = orjson.loads(lines[0])
    signed = ledger.tamper_evidence.latest()
    assert signed is not None
    impostor = Ed25519PrivateKey.generate()
    header["checkpoint"] = sign(signed.checkpoint, signed.checkpoint.origin, impostor)
    header["public_key"] = VerifierKey.from_public_key(
        signed.checkpoint.origin, impostor.public_key()
    ).text
    lines[0] = orjson.dumps(header, option=orjson.OPT_APPEND_NEWLINE)

    unpinned = verify_bundle(lines)
    pinned = check(lines, ledger)

    assert unpinned.ok
    assert not unpinned.pinned  # the CLI warns: compare the key out of band
    assert not pinned.ok


def test_a_rewritten_and_re_signed_ledger_fails_against_a_kept_checkpoint(
    ledger: ConsentLedger, raw: RawStore
) -> None:
    _, position, _ = tampered(ledger, raw)
    kept = ledger.tamper_evidence.latest()
    assert kept is not None
    raw.set_state(position, flip_a_byte(bytes(raw.row(position)[3])))
    drop_evidence(ledger)

    lines = bundle_of(ledger)  # signs the rewritten log anew

    assert check(lines, ledger).ok
    result = check(lines, ledger, [kept.note])
    assert not result.ok
    assert f"your checkpoint {kept.size}" in (result.problem or "")


def test_something_else_is_not_a_bundle(ledger: ConsentLedger) -> None:
    result = check([b'{"position":1}\n'], ledger)

    assert (
        result.problem
        == "not a consent-ledger bundle (its first line must name consent-ledger-bundle/1)"
    )


@pytest.fixture
def raw(ledger_at: tuple[ConsentLedger, str, Path | None]) -> Iterator[RawStore]:
    store = RawStore(ledger_at[1])
    yield store
    store.close()


@pytest.mark.parametrize(
    ("consistency", "problem"),
    [
        (["no object"], "the bundle header has no valid 'consistency' (each proof is an object)"),
        (
            [{"size": "KEPT", "proof": ["zz"]}],
            "the consistency proof from checkpoint KEPT is not hex",
        ),
    ],
)
def test_a_malformed_consistency_proof_is_a_problem_not_a_crash(
    ledger: ConsentLedger, consistency: object, problem: str
) -> None:
    record(ledger, 1)
    kept = ledger.checkpoint()
    record(ledger, 1, start=1)
    lines = bundle_of(ledger, person_positions(ledger, "+44 7700 900001"))
    header = orjson.loads(lines[0])
    header["consistency"] = orjson.loads(
        orjson.dumps(consistency).replace(b'"KEPT"', b"%d" % kept.size)
    )
    lines[0] = orjson.dumps(header) + b"\n"

    result = check(lines, ledger, [kept.note])

    assert not result.ok
    assert result.problem == problem.replace("KEPT", str(kept.size))


def test_no_complete_bundle_is_written_from_a_log_changed_since_it_was_signed(
    ledger: ConsentLedger, raw: RawStore
) -> None:
    _, position, _ = tampered(ledger, raw)
    raw.set_state(position, flip_a_byte(bytes(raw.row(position)[3])))

    with pytest.raises(IntegrityError, match="the log does not hash to checkpoint"):
        bundle_of(ledger)


# The header's event count and time (issue #11): not signed, so checked against the file.


def with_header(lines: list[bytes], **changes: object) -> list[bytes]:
    header = orjson.loads(lines[0]) | changes
    return [orjson.dumps({k: v for k, v in header.items() if v is not None}) + b"\n", *lines[1:]]


def test_a_partial_bundle_missing_a_line_fails_on_its_event_count(ledger: ConsentLedger) -> None:
    """Each line left carries its own proof: only the header's count shows one is gone."""
    record(ledger, 5)
    lines = bundle_of(ledger, person_positions(ledger, "+44 7700 900003"))

    result = check(lines[:-1], ledger)

    assert result.problem == (
        f"line 1: the bundle header says {len(lines) - 1} events; the bundle holds {len(lines) - 2}"
    )


def test_a_bundle_header_time_not_in_utc_fails(ledger: ConsentLedger) -> None:
    record(ledger, 2)
    lines = with_header(bundle_of(ledger), created_at="2026-12-02T10:00:00+01:00")

    result = check(lines, ledger)

    assert result.problem == (
        "line 1: the bundle header's created_at '2026-12-02T10:00:00+01:00' is not a UTC time"
    )


def test_a_bundle_header_without_its_event_count_is_not_read(ledger: ConsentLedger) -> None:
    record(ledger, 2)
    lines = with_header(bundle_of(ledger), events=None)

    assert check(lines, ledger).problem == "the bundle header has no valid 'events'"


def test_a_bundle_checked_long_after_it_was_made_verifies(ledger: ConsentLedger) -> None:
    record(ledger, 2)
    lines = bundle_of(ledger)
    made = datetime.fromisoformat(orjson.loads(lines[0])["created_at"])

    result = verify_bundle(lines, [ledger.verifier_key()], now=made + timedelta(days=400))

    assert result.ok, result.problem
    assert result.created_at == orjson.loads(lines[0])["created_at"]
