"""``verify`` from the command line finds damage to what decisions rest on (issue #11).

The views and the ledger's lookups, each damaged behind the ledger's back with sqlite3 (the
library tests in tests/test_damage.py do the same on PostgreSQL too): ``verify`` exits 1
with one ``Error: verification failed: ...`` line naming the table and the person.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import TYPE_CHECKING

import pytest
from consent_ledger.cli import main

from tests.cli.conftest import fails, new_ledger, ok
from tests.cli.test_cli import ADA, opt_in

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner

BRUNO = "+44 7700 900456"


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A checkpointed ledger with its views: Ada opted in to offers, then out; Bruno in."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    opt_in(runner, path)
    ok(runner, "opt-out", ADA, "--db", path, "-c", "offers", "--method", "sms-keyword")
    ok(runner, *("opt-in", BRUNO, "--db", path, "-c", "offers"), *NOTICE)
    ok(runner, "checkpoint", "--db", path)
    ok(runner, "projections", "catch-up", "--db", path)
    return path


NOTICE = ("--notice", "whatsapp-optin@1", "--method", "web-form")


def subject_of(db: str, identifier: str, runner: CliRunner) -> str:
    status = ok(runner, "status", identifier, "--db", db, "--format", "json")
    return str(json.loads(status.stdout)["subject_id"])


def damage(db: str, statement: str, *params: object) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(statement, params)


def may_send_offers(runner: CliRunner, db: str, identifier: str) -> bool:
    """What ``check`` answers (it reads the consent-status view): exit 0 allowed, 3 denied."""
    checked = runner.invoke(main, ["check", identifier, "--db", db, "-c", "offers"])
    assert checked.exit_code in {0, 3}, checked.output
    return checked.exit_code == 0


def test_an_undamaged_ledger_verifies_with_its_views_and_lookups(
    db: str, runner: CliRunner
) -> None:
    result = ok(runner, "verify", "--db", db)

    assert result.stdout.splitlines()[1] == (
        "lookups of 2 people agree with the log; views: audit-log (up to position 9), "
        "consent-status (up to position 9) agree"
    )


def test_answers_edited_to_allow_a_send_fail_verify(db: str, runner: CliRunner) -> None:
    ada = subject_of(db, ADA, runner)
    assert not may_send_offers(runner, db, ADA)
    damage(
        db,
        "UPDATE consent_subjects SET answers = REPLACE(answers, 'withdrawn', 'granted') "
        "WHERE subject_id = ?",
        ada,
    )
    assert may_send_offers(runner, db, ADA)  # what the damage does

    result = fails(runner, "verify", "--db", db)

    assert result.stderr.splitlines()[-1].startswith(
        f"Error: verification failed: consent_subjects: subject {ada}: answers (what a check "
        "reads) differs from the log"
    )


def test_a_deleted_status_row_fails_verify(db: str, runner: CliRunner) -> None:
    bruno = subject_of(db, BRUNO, runner)
    damage(db, "DELETE FROM consent_status WHERE subject_id = ? AND category = 'offers'", bruno)

    result = fails(runner, "verify", "--db", db)

    assert (
        f"Error: verification failed: consent_status: subject {bruno}: no row for "
        "whatsapp/offers/any"
    ) in result.stderr


def test_a_deleted_lookup_fails_verify(db: str, runner: CliRunner) -> None:
    bruno = subject_of(db, BRUNO, runner)
    damage(db, "DELETE FROM subject_lookup WHERE subject_id = ?", uuid.UUID(bruno).hex)

    result = fails(runner, "verify", "--db", db)

    assert (
        f"Error: verification failed: subject_lookup: the identifier of subject {bruno} "
        "recorded at position"
    ) in result.stderr
    assert "has no lookup (the person's next opt-out would start a new record)" in result.stderr


def test_a_lookup_pointing_at_another_person_fails_verify(db: str, runner: CliRunner) -> None:
    ada, bruno = subject_of(db, ADA, runner), subject_of(db, BRUNO, runner)
    damage(
        db,
        "UPDATE subject_lookup SET subject_id = ? WHERE subject_id = ?",
        uuid.UUID(bruno).hex,
        uuid.UUID(ada).hex,
    )

    result = fails(runner, "verify", "--db", db)

    assert f"the identifier of subject {ada} recorded at position" in result.stderr
    assert f"finds subject {bruno} instead" in result.stderr


def test_log_only_does_not_read_the_views(db: str, runner: CliRunner) -> None:
    damage(db, "DELETE FROM consent_status")

    result = ok(runner, "verify", "--db", db, "--log-only")

    assert result.stdout.strip() == "verified: 9 events exactly as signed (1 checkpoint)"


def test_views_in_another_database_are_checked(db: str, runner: CliRunner, tmp_path: Path) -> None:
    views = str(tmp_path / "views.db")
    ok(runner, "projections", "catch-up", "--db", db, "--view-db", views)
    damage(views, "DELETE FROM audit_log WHERE position = 7")

    result = fails(runner, "verify", "--db", db, "--view-db", views)

    assert "Error: verification failed: audit_log: position 7 (OptedOut) is missing" in (
        result.stderr
    )


def test_the_json_report_lists_every_disagreement(db: str, runner: CliRunner) -> None:
    damage(db, "DELETE FROM consent_status")

    report = runner.invoke(main, ["verify", "--db", db, "--format", "json"])

    assert report.exit_code == 1
    derived = json.loads(report.stdout)["derived"]
    assert derived["views"] == {"audit-log": 9, "consent-status": 9}
    assert len(derived["problems"]) == 2  # a row each: Ada's withdrawn offers, Bruno's granted
