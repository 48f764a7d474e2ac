"""A ledger written by an earlier version opens, reads, checks and verifies as it did then.

``tests/data/ledger-0.1.0`` was written by consent-ledger 0.1.0 (its README says how), with the
answers that code gave. Stored events keep their topics and views their tables, so today's code
must give the same answers, byte for byte, and accept new writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from consent_ledger.cli import main

from consent_ledger import ConsentLedger, OptIn
from tests.cli.conftest import ok

if TYPE_CHECKING:
    from click.testing import CliRunner

WRITTEN = Path(__file__).parent.parent / "data" / "ledger-0.1.0"
EXPECTED = WRITTEN / "expected"
PEOPLE = ("+447700900123", "+12025550143", "+61491570156", "+447700900456")
CATEGORIES = ("order-updates", "offers", "back-in-stock")


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A copy of the stored ledger (reading catches views up, which writes)."""
    for name in ("ledger.db", "ledger.db.key", "ledger.pub", "first.note", "second.note"):
        shutil.copy(WRITTEN / name, tmp_path / name)
    (tmp_path / "ledger.db.key").chmod(0o600)  # git keeps 0644; the ledger refuses that
    return str(tmp_path / "ledger.db")


def test_every_event_exports_exactly_as_stored(db: str, runner: CliRunner) -> None:
    result = ok(runner, "export", "--db", db)

    assert result.stdout == (EXPECTED / "export.jsonl").read_text()


def test_the_audit_log_reads_as_it_did(db: str, runner: CliRunner) -> None:
    result = ok(runner, "audit", "--db", db, "--format", "json")

    assert json.loads(result.stdout) == json.loads((EXPECTED / "audit.json").read_text())


@pytest.mark.parametrize("person", PEOPLE)
def test_each_history_and_status_reads_as_it_did(db: str, runner: CliRunner, person: str) -> None:
    history = ok(runner, "history", person, "--db", db, "--format", "json")
    status = ok(
        runner,
        *("status", person, "--db", db, "--format", "json"),
        *("--at", "2026-12-01T12:00:00Z", "--known-at", "2026-12-02T18:00:00Z"),
    )

    digits = person.removeprefix("+")
    then = json.loads((EXPECTED / f"history-{digits}.json").read_text())
    now = json.loads(history.stdout)
    # JSON keys are stable: each one written then has its value; new keys may be added.
    assert len(now["events"]) == len(then["events"])
    pairs = zip(now["events"], then["events"], strict=True)
    assert [{k: event[k] for k in old} for event, old in pairs] == then["events"]
    assert {k: v for k, v in now.items() if k != "events"} == {
        k: v for k, v in then.items() if k != "events"
    }
    assert json.loads(status.stdout) == json.loads((EXPECTED / f"status-{digits}.json").read_text())


def test_checks_decide_as_they_did(db: str, runner: CliRunner) -> None:
    expected = _json_documents((EXPECTED / "checks.jsonl").read_text())
    decided = []
    for person in PEOPLE:
        for category in CATEGORIES:
            at = ("--at", "2026-12-02T16:00:00Z")
            result = runner.invoke(
                main, ["check", person, "-c", category, "--db", db, *at, "--format", "json"]
            )
            assert result.exit_code in {0, 3}, result.output
            decided.append(json.loads(result.stdout))

    assert decided == expected


def test_the_view_answers_checks_as_the_record_does(db: str, runner: CliRunner) -> None:
    """Without --at, checks read the views the old code built; they agree with the fold."""
    expected = _json_documents((EXPECTED / "checks.jsonl").read_text())
    for decision in expected:
        result = runner.invoke(
            main, ["check", decision["identifier"], "-c", decision["category"], "--db", db]
        )
        assert result.exit_code == (0 if decision["allowed"] else 3), result.output
        assert f"{decision['reason']} (" in result.stdout


def test_the_log_verifies_against_the_checkpoints_kept_then(db: str, runner: CliRunner) -> None:
    folder = Path(db).parent
    result = ok(
        runner,
        *("verify", "--db", db, "--public-key", str(folder / "ledger.pub")),
        *("--since", str(folder / "first.note"), "--since", str(folder / "second.note")),
    )

    log, derived = result.stdout.splitlines()
    assert log == "verified: 45 events exactly as signed (2 checkpoints)"
    assert derived == (  # the lookups and the audit log that code wrote agree with today's
        "lookups of 6 people agree with the log; views: audit-log (up to position 45) agree; "
        "view consent-status was built by another version: not checked (catch-up rebuilds it)"
    )
    ok(runner, "projections", "catch-up", "--db", db)  # consent-status: schema 1 -> 2
    again = ok(runner, "verify", "--db", db, "--since", str(folder / "second.note"))
    assert again.stdout.splitlines()[1] == (
        "lookups of 6 people agree with the log; views: audit-log (up to position 45), "
        "consent-status (up to position 45) agree"
    )


def test_it_takes_new_events_and_still_verifies(db: str, runner: CliRunner) -> None:
    with ConsentLedger.open(db) as ledger:
        recorded = ledger.opt_in(
            OptIn(
                business_id="acme",
                identifier="+44 7700 900789",
                categories=("offers",),
                notice="whatsapp-optin@2",
                method="web-form",
            )
        )
    ok(runner, "checkpoint", "--db", db)
    checked = ok(runner, "check", "+447700900789", "-c", "offers", "--db", db)
    verified = ok(runner, "verify", "--db", db, "--since", str(Path(db).parent / "second.note"))

    assert recorded.new_subject
    assert "ALLOWED: consented" in checked.stdout
    assert "verified: 47 events exactly as signed (3 checkpoints)" in verified.stdout


def _json_documents(text: str) -> list[dict[str, Any]]:
    """The JSON documents written one after another (pretty-printed) in ``text``."""
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        document, index = decoder.raw_decode(text, index)
        documents.append(document)
    return documents
