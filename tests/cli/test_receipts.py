"""``consent-ledger receipt``: Kantara consent receipts as JSON on stdout, errors on stderr."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from consent_ledger.cli import main

from tests.cli.conftest import new_ledger, ok

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner, Result

ADA = "+44 7700 900123"
ADA_E164 = "+447700900123"
BRUNO = "+1 202-555-0143"
OCCURRED = "2026-10-01T09:30:15.250000+00:00"
EXTENSION = "x-consent-ledger"


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where Ada opted in twice (offers at checkout, then order updates)."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    opt_in(runner, path, "-c", "offers", "--collection-point", "https://acme.example/checkout")
    opt_in(runner, path, "-c", "order-updates", "--jurisdiction", "GB")
    return path


def opt_in(runner: CliRunner, db: str, *extra: str, person: str = ADA) -> None:
    ok(
        runner,
        "opt-in",
        person,
        "--db",
        db,
        "--notice",
        "whatsapp-optin@1",
        "--method",
        "web-form",
        "--occurred-at",
        OCCURRED,
        *extra,
    )


def run(runner: CliRunner, *args: str) -> Result:
    """Run ``receipt``, which must succeed."""
    result = runner.invoke(main, ["receipt", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result


def refused(runner: CliRunner, *args: str, code: int = 1) -> Result:
    """Run ``receipt``, which must fail with ``code``, nothing on stdout and no traceback."""
    result = runner.invoke(main, ["receipt", *args])
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def receipts_of(runner: CliRunner, db: str, *args: str) -> Any:
    return json.loads(run(runner, ADA, "--db", db, *args).stdout)


class TestReceipts:
    def test_writes_a_list_with_one_receipt_per_opt_in(self, db: str, runner: CliRunner) -> None:
        found = receipts_of(runner, db)

        assert [r["version"] for r in found] == ["KI-CR-v1.1.0"] * 2
        assert [r[EXTENSION]["event_version"] for r in found] == [2, 3]
        assert [r[EXTENSION]["categories"] for r in found] == [["offers"], ["order-updates"]]
        assert found[0]["collectionMethod"] == "web-form at https://acme.example/checkout"
        assert (found[0]["jurisdiction"], found[1]["jurisdiction"]) == ("not recorded", "GB")

    def test_the_timestamp_is_the_occurred_time_in_seconds(
        self, db: str, runner: CliRunner
    ) -> None:
        [first, _] = receipts_of(runner, db)

        assert first["consentTimestamp"] == int(
            datetime(2026, 10, 1, 9, 30, 15, tzinfo=UTC).timestamp()
        )
        assert first[EXTENSION]["occurred_at"] == "2026-10-01T09:30:15.250000Z"

    def test_names_the_notice_version_and_its_hash(self, db: str, runner: CliRunner) -> None:
        shown = json.loads(
            ok(runner, "notice", "show", "whatsapp-optin@1", "--db", db, "--format", "json").stdout
        )

        [first, _] = receipts_of(runner, db)

        assert first[EXTENSION]["notice"] == "whatsapp-optin@1"
        assert first[EXTENSION]["notice_hash"] == shown["content_hash"]
        assert first["piiControllers"][0]["piiController"] == shown["business_name"]

    def test_ids_are_stable_and_one_per_event(self, db: str, runner: CliRunner) -> None:
        ids = [r["consentReceiptID"] for r in receipts_of(runner, db)]

        assert ids == [r["consentReceiptID"] for r in receipts_of(runner, db)]
        assert len(set(ids)) == 2

    def test_version_writes_that_receipt_alone(self, db: str, runner: CliRunner) -> None:
        every = receipts_of(runner, db)

        one = receipts_of(runner, db, "--version", "3")

        assert one == every[1]

    def test_the_identifier_is_left_out_unless_revealed(self, db: str, runner: CliRunner) -> None:
        hidden = run(runner, ADA, "--db", db).stdout
        revealed = json.loads(run(runner, ADA, "--db", db, "--reveal").stdout)

        assert ADA_E164 not in hidden
        assert "7700900123" not in hidden
        assert [r["piiPrincipalId"] for r in revealed] == [ADA_E164] * 2
        assert json.loads(hidden)[0]["piiPrincipalId"] == revealed[0][EXTENSION]["subject_id"]

    def test_a_confirmed_double_opt_in_says_so(self, db: str, runner: CliRunner) -> None:
        opt_in(runner, db, "-c", "offers", "--awaiting-confirmation", person=BRUNO)
        ok(runner, "confirm", BRUNO, "--db", db, "-c", "offers", "--method", "sms-keyword")

        [found] = json.loads(run(runner, BRUNO, "--db", db).stdout)

        assert found["collectionMethod"] == "web-form; double opt-in, confirmed (event #3)"
        assert found[EXTENSION]["double_opt_in"]["confirmed"] is True
        [confirmation] = found[EXTENSION]["double_opt_in"]["confirmations"]
        assert (confirmation["event_version"], confirmation["method"]) == (3, "sms-keyword")

    def test_help_has_examples(self, runner: CliRunner) -> None:
        result = run(runner, "--help")

        assert "Examples:" in result.stdout
        assert 'consent-ledger receipt "+44 7700 900123"' in result.stdout


class TestErrors:
    def test_an_unknown_person(self, db: str, runner: CliRunner) -> None:
        result = refused(runner, BRUNO, "--db", db)

        assert result.stderr == "Error: business 'acme' has no consent record for +12025550143\n"

    def test_a_version_that_is_not_an_opt_in(self, db: str, runner: CliRunner) -> None:
        result = refused(runner, ADA, "--db", db, "--version", "1")

        assert result.stderr.startswith("Error: event #1 (SubjectRegistered) grants no consent")

    def test_a_version_that_is_not_there(self, db: str, runner: CliRunner) -> None:
        result = refused(runner, ADA, "--db", db, "--version", "7")

        assert "has no event #7 (its events are #1 to #3)" in result.stderr

    def test_a_confirmation_points_to_its_opt_in(self, db: str, runner: CliRunner) -> None:
        opt_in(runner, db, "-c", "offers", "--awaiting-confirmation", person=BRUNO)
        ok(runner, "confirm", BRUNO, "--db", db, "-c", "offers", "--method", "sms-keyword")

        result = refused(runner, BRUNO, "--db", db, "--version", "3")

        assert "part of the receipt of the opt-in it confirms (#2)" in result.stderr

    def test_a_version_below_1_is_a_usage_error(self, db: str, runner: CliRunner) -> None:
        result = refused(runner, ADA, "--db", db, "--version", "0", code=2)

        assert "Invalid value for '--version'" in result.stderr

    def test_no_ledger(self, tmp_path: Path, runner: CliRunner) -> None:
        result = refused(runner, ADA, "--db", str(tmp_path / "missing.db"))

        assert result.stderr.startswith("Error: ")
        assert "Traceback" not in result.stderr
