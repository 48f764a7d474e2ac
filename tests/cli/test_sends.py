"""Sends from the command line: check --record reserves a send, send record keeps one made."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from consent_ledger.cli import main

from tests.cli.conftest import fails, new_ledger, ok

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner

MIAMI = "+13055550123"
RESERVE = ("--policy", "us-fl-ftsa", "--at")


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where a Florida number opted in to offers on 1 November."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    ok(runner, "opt-in", MIAMI, "-c", "offers", "--notice", "whatsapp-optin@1",
       "--method", "web-form", "--occurred-at", "2026-11-01", "--db", path)  # fmt: skip
    return path


def test_check_record_takes_three_places_then_refuses(db: str, runner: CliRunner) -> None:
    results = [
        runner.invoke(
            main,
            [
                "check",
                MIAMI,
                "-c",
                "offers",
                *RESERVE,
                f"2026-12-01T1{n}:00:00Z",
                "--record",
                f"wamid.{n}",
                "--db",
                db,
            ],
        )
        for n in range(3, 7)
    ]

    assert [r.exit_code for r in results] == [0, 0, 0, 3]
    assert results[0].stdout.startswith("Recorded MessageSent #3 for +13055550123")
    assert "allowed (consented), rests on #2 under us-fl-ftsa" in results[0].stdout
    assert results[3].stdout.startswith("Not recorded: NOT allowed (frequency-limit)")


def test_send_record_keeps_a_send_made_and_says_it_was_not_allowed(
    db: str, runner: CliRunner
) -> None:
    late = ("--sent-at", "2026-12-02T01:30:00Z")  # 20:30 in Miami: quiet hours
    result = ok(runner, "send", "record", MIAMI, "-c", "offers", "--message-id", "wamid.LATE",
                "--policy", "us-fl-ftsa", *late, "--db", db)  # fmt: skip
    again = ok(runner, "send", "record", MIAMI, "-c", "offers", "--message-id", "wamid.LATE",
               "--policy", "us-fl-ftsa", *late, "--db", db)  # fmt: skip
    history = json.loads(ok(runner, "history", MIAMI, "--db", db, "--format", "json").stdout)

    assert result.stdout.startswith("Recorded MessageSent #3")
    assert "NOT allowed (quiet-hours)" in result.stdout
    assert result.stderr.startswith("Warning: this send was not allowed: 20:30 in America/")
    assert again.stdout.startswith("Already recorded as #3")
    [sent] = [e for e in history["events"] if e["event_type"] == "MessageSent"]
    assert sent["send"]["reason"] == "quiet-hours"
    assert sent["send"]["message"] != "wamid.LATE"


def test_a_policy_file_with_an_error_is_a_usage_error(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    policy = tmp_path / "mine.json"
    policy.write_text('{"name": "mine"}')

    result = fails(runner, "check", MIAMI, "-c", "offers", "--policy", str(policy), "--db", db,
                   code=2)  # fmt: skip

    assert "policy file" in result.stderr
    assert "policy description: missing" in result.stderr
