"""Tamper evidence from the command line: checkpoint, verify."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import fails, new_ledger, ok
from tests.cli.test_cli import ADA, opt_in

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where Ada opted in to offers."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    opt_in(runner, path)
    return path


def events(db: str) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])


def test_checkpoint_writes_a_signed_note_of_every_event(db: str, runner: CliRunner) -> None:
    result = ok(runner, "checkpoint", "--db", db)

    origin, size, root, blank, signature = result.stdout.splitlines()
    assert origin.startswith("consent-ledger/")
    assert int(size) == events(db)
    assert len(root) == 44  # base64 of 32 bytes
    assert blank == ""
    assert signature.startswith(f"\N{EM DASH} {origin} ")
    assert f"checkpoint {size} signed ({size} new events)" in result.stderr


def test_verify_accepts_an_untouched_ledger(db: str, runner: CliRunner, tmp_path: Path) -> None:
    ok(runner, "checkpoint", "--db", db)
    key = tmp_path / "ledger.pub"
    key.write_text(ok(runner, "checkpoint", "--db", db, "--print-key").stdout)

    result = ok(runner, "verify", "--db", db, "--public-key", str(key), "--format", "json")

    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["covered"] == report["events"] == events(db)


def test_verify_counts_events_recorded_since_the_latest_checkpoint(
    db: str, runner: CliRunner
) -> None:
    ok(runner, "checkpoint", "--db", db)
    ok(runner, "opt-out", ADA, "--db", db, "--all", "--method", "sms-keyword")

    result = ok(runner, "verify", "--db", db)

    log, derived = result.stdout.splitlines()
    assert log == (
        f"verified: {events(db) - 1} events exactly as signed (1 checkpoint); "
        "1 recorded since the latest, not yet covered"
    )
    assert derived == "lookups of 1 person agree with the log; no views built to check"


def test_verify_names_the_position_of_a_changed_event(db: str, runner: CliRunner) -> None:
    ok(runner, "checkpoint", "--db", db)
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE stored_events SET state = CAST(REPLACE(CAST(state AS TEXT), 'offers', "
            "'offerz') AS BLOB) WHERE topic LIKE '%OptedIn'"
        )
        [(position,)] = connection.execute(
            "SELECT rowid FROM stored_events WHERE topic LIKE '%OptedIn'"
        ).fetchall()

    result = fails(runner, "verify", "--db", db)

    assert f"Error: verification failed: position {position} differs" in result.stderr


def test_verify_refuses_checkpoints_signed_by_another_key(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    ok(runner, "checkpoint", "--db", db)
    other = new_ledger(runner, str(tmp_path / "other.db"))
    stranger = ok(runner, "checkpoint", "--db", other, "--print-key").stdout.strip()

    result = fails(runner, "verify", "--db", db, "--public-key", stranger)

    assert "Error: verification failed: checkpoint" in result.stderr


def test_verify_holds_the_log_to_a_checkpoint_kept_outside(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    kept = tmp_path / "kept.note"
    kept.write_text(ok(runner, "checkpoint", "--db", db).stdout)
    ok(runner, "opt-out", ADA, "--db", db, "--all", "--method", "sms-keyword")
    ok(runner, "checkpoint", "--db", db)

    ok(runner, "verify", "--db", db, "--since", str(kept))


def test_a_malformed_public_key_is_a_clear_error(db: str, runner: CliRunner) -> None:
    result = fails(runner, "verify", "--db", db, "--public-key", "not-a-key")

    assert result.stderr.startswith("Error: ")


def test_a_thorough_verify_also_checks_the_kept_leaves(db: str, runner: CliRunner) -> None:
    ok(runner, "checkpoint", "--db", db)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE ledger_leaves SET leaf_hash = zeroblob(32) WHERE leaf_index = 2")

    quick = ok(runner, "verify", "--db", db)
    thorough = fails(runner, "verify", "--db", db, "--thorough")

    assert quick.stdout.startswith("verified: ")
    assert "the leaf index was altered" in thorough.stderr


def test_an_emptied_checkpoints_table_fails_verify_since(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    """Not "no checkpoint yet": the note kept outside names one the ledger must hold (#11)."""
    kept = tmp_path / "kept.note"
    kept.write_text(ok(runner, "checkpoint", "--db", db).stdout)
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM ledger_checkpoints")

    result = fails(runner, "verify", "--db", db, "--since", str(kept))

    assert result.stderr.splitlines()[-1] == (
        f"Error: verification failed: your kept checkpoint {events(db)} is missing from the "
        "ledger's checkpoints (ledger_checkpoints; the ledger holds no checkpoint at all): they "
        "were emptied or altered, though the log still matches it"
    )
