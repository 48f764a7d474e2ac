"""The read side from the command line: check, audience, audit and projections."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
from consent_ledger.cli import main

from tests.cli.conftest import fails, new_ledger, ok
from tests.cli.test_cli import ADA

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner

BRUNO = "+1 202-555-0143"
SHOP = "15550001111"


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where Ada opted in to offers and order updates and stopped marketing from SHOP,
    and Bruno opted in to order updates only."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    for person, categories in ((ADA, "offers,order-updates"), (BRUNO, "order-updates")):
        ok(
            runner,
            "opt-in",
            person,
            "--db",
            path,
            "-c",
            categories,
            "--notice",
            "whatsapp-optin@1",
            "--method",
            "web-form",
        )
    ok(runner, "marketing-preference", ADA, "--db", path, "--stop", "--sender", SHOP)
    return path


class TestCheck:
    def test_allowed_exits_0_and_names_the_event(self, db: str, runner: CliRunner) -> None:
        result = ok(runner, "check", ADA, "--db", db, "-c", "order-updates", "--format", "json")

        decision = json.loads(result.stdout)
        assert (decision["allowed"], decision["reason"], decision["event_type"]) == (
            True,
            "consented",
            "OptedIn",
        )
        assert decision["template_category"] == "UTILITY"

    def test_denied_exits_3(self, db: str, runner: CliRunner) -> None:
        result = runner.invoke(main, ["check", ADA, "--db", db, "-c", "offers", "--sender", SHOP])

        assert result.exit_code == 3
        assert result.stdout.startswith("DENIED: platform-marketing-stop (the person stopped")
        assert result.stderr == ""

    def test_what_was_just_recorded_is_what_is_read(self, db: str, runner: CliRunner) -> None:
        ok(runner, "check", BRUNO, "--db", db, "-c", "order-updates")
        ok(runner, "opt-out", BRUNO, "--db", db, "--all", "--method", "whatsapp-thread")

        result = runner.invoke(main, ["check", BRUNO, "--db", db, "-c", "order-updates"])

        assert result.exit_code == 3
        assert "DENIED: withdrawn" in result.stdout

    def test_policy_2021_refuses_countries_outside_its_list(
        self, db: str, runner: CliRunner
    ) -> None:
        result = runner.invoke(
            main,
            [
                "check",
                "+61 491 570 156",
                "--db",
                db,
                "-c",
                "offers",
                "--policy",
                "whatsapp-2021",
                "--format",
                "json",
            ],
        )

        assert result.exit_code == 3
        assert json.loads(result.stdout)["reason"] == "country-not-allowed"

    def test_many_recipients_from_a_csv_file(
        self, db: str, runner: CliRunner, tmp_path: Path
    ) -> None:
        recipients = tmp_path / "recipients.csv"
        recipients.write_text(
            "identifier,category\n"
            f"{ADA},order-updates\n"
            f"{BRUNO},offers\n"
            "+61 491 570 156,order-updates\n"
        )

        result = ok(runner, "check", "--input", str(recipients), "--db", db, "--format", "csv")

        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert [(r["line"], r["identifier"], r["allowed"], r["reason"]) for r in rows] == [
            ("2", "+447700900123", "True", "consented"),
            ("3", "+12025550143", "False", "no-consent"),
            ("4", "+61491570156", "False", "no-consent"),
        ]

    def test_json_lines_from_stdin(self, db: str, runner: CliRunner) -> None:
        lines = '{"identifier": "+447700900123", "category": "offers", "sender": "15550002222"}\n'

        result = ok(runner, "check", "--input", "-", "--db", db, "--format", "jsonl", input=lines)

        [row] = [json.loads(line) for line in result.stdout.splitlines()]
        assert (row["line"], row["allowed"], row["sender"]) == (1, True, "15550002222")

    def test_bad_rows_are_reported_by_line_and_the_rest_still_decided(
        self, db: str, runner: CliRunner, tmp_path: Path
    ) -> None:
        recipients = tmp_path / "recipients.csv"
        recipients.write_text(
            f"identifier,category\n{ADA},order-updates\nnot-a-number,offers\n{ADA},ofers\n"
        )

        result = runner.invoke(main, ["check", "--input", str(recipients), "--db", db])

        assert result.exit_code == 1
        assert len(list(csv.DictReader(io.StringIO(result.stdout)))) == 1
        assert result.stderr.startswith("Error: 2 rows could not be checked: line 3: cannot read")
        assert "line 4: unknown category 'ofers'" in result.stderr

    def test_a_file_without_an_identifier_column(
        self, db: str, runner: CliRunner, tmp_path: Path
    ) -> None:
        recipients = tmp_path / "recipients.csv"
        recipients.write_text("phone,category\n+447700900123,offers\n")

        result = fails(runner, "check", "--input", str(recipients), "--db", db, "-c", "offers")

        assert "line 1: the CSV header has no 'identifier' column" in result.stderr

    def test_an_unknown_policy_is_a_usage_error(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "check", ADA, "--db", db, "-c", "offers", "--policy", "nope", code=2)

        assert "Invalid value for '--policy'" in result.stderr

    def test_an_unknown_category_is_refused(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "check", ADA, "--db", db, "-c", "ofers")

        assert result.stderr.startswith(
            "Error: unknown category 'ofers'; this business's categories: order-updates, "
        )

    def test_a_malformed_category_is_a_usage_error(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "check", ADA, "--db", db, "-c", "Ofers", code=2)

        assert "Error: Invalid value for '--category' / '-c': 'Ofers' is not a category name" in (
            result.stderr
        )

    def test_identifier_and_input_together_is_a_usage_error(
        self, db: str, runner: CliRunner
    ) -> None:
        result = fails(runner, "check", ADA, "--input", "-", "--db", db, "-c", "offers", code=2)

        assert "give one IDENTIFIER, or --input FILE for many" in result.stderr


class TestAudience:
    def test_everyone_allowed_with_identifiers_opened(self, db: str, runner: CliRunner) -> None:
        result = ok(runner, "audience", "--db", db, "-c", "order-updates")

        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert sorted(r["identifier"] for r in rows) == ["+12025550143", "+447700900123"]
        assert {r["event_type"] for r in rows} == {"OptedIn"}

    def test_a_marketing_stop_removes_the_person_for_that_sender(
        self, db: str, runner: CliRunner, tmp_path: Path
    ) -> None:
        out = tmp_path / "offers.jsonl"
        ok(
            runner,
            "audience",
            "--db",
            db,
            "-c",
            "offers",
            "--sender",
            "15550002222",
            "--format",
            "jsonl",
            "--output",
            str(out),
        )
        stopped = ok(runner, "audience", "--db", db, "-c", "offers", "--sender", SHOP).stdout

        assert [json.loads(line)["identifier"] for line in out.read_text().splitlines()] == [
            "+447700900123"
        ]
        assert stopped.splitlines()[1:] == []

    def test_a_file_of_recipients_is_readable_by_its_owner_only(
        self, db: str, runner: CliRunner, tmp_path: Path
    ) -> None:
        """Recipients' identifiers are opened: the file is personal data, as exports are."""
        out = tmp_path / "updates.csv"

        ok(runner, "audience", "--db", db, "-c", "order-updates", "-o", str(out))

        assert out.stat().st_mode & 0o777 == 0o600
        assert "+447700900123" in out.read_text()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    def test_needs_a_category(self, db: str, runner: CliRunner) -> None:
        assert "--category" in fails(runner, "audience", "--db", db, code=2).stderr


class TestAudit:
    def test_filters_by_type_and_category(self, db: str, runner: CliRunner) -> None:
        result = ok(
            runner, "audit", "--db", db, "--type", "OptedIn", "-c", "offers", "--format", "json"
        )

        rows = json.loads(result.stdout)
        assert [(r["event_type"], r["granted"]) for r in rows] == [
            ("OptedIn", ["offers", "order-updates"])
        ]
        assert "+44" not in result.stdout

    def test_table(self, db: str, runner: CliRunner) -> None:
        lines = ok(
            runner, "audit", "--db", db, "--type", "PlatformMarketingStopped"
        ).stdout.splitlines()

        assert lines[0].split()[:2] == ["#", "EVENT"]
        assert lines[1].split()[1] == "PlatformMarketingStopped"

    def test_no_match(self, db: str, runner: CliRunner) -> None:
        result = ok(runner, "audit", "--db", db, "--from", "2000-01-01", "--to", "2000-02-01")

        assert result.stdout == "(no events match)\n"


class TestProjections:
    def test_status_catch_up_and_rebuild(self, db: str, runner: CliRunner) -> None:
        before = json.loads(
            ok(runner, "projections", "status", "--db", db, "--format", "json").stdout
        )
        caught = ok(runner, "projections", "catch-up", "--db", db).stdout
        after = json.loads(
            ok(runner, "projections", "status", "--db", db, "--format", "json").stdout
        )
        rebuilt = ok(runner, "projections", "rebuild", "--db", db, "--view", "audit-log")

        assert [(v["view"], v["position"]) for v in before] == [
            ("consent-status", 0),
            ("audit-log", 0),
        ]
        assert "consent-status: applied" in caught
        assert {v["lag"] for v in after} == {0}
        assert rebuilt.stdout.startswith(f"audit-log: rebuilt from {after[0]['head']} events")

    def test_views_in_another_database(self, db: str, runner: CliRunner, tmp_path: Path) -> None:
        views = str(tmp_path / "views.db")
        ok(runner, "projections", "catch-up", "--db", db, "--view-db", views)

        result = ok(runner, "check", ADA, "--db", db, "--view-db", views, "-c", "order-updates")

        assert result.stdout.startswith("ALLOWED: consented")
        assert (tmp_path / "views.db").exists()


def test_follow_keeps_the_views_caught_up_until_interrupted(db: str, runner: CliRunner) -> None:
    """`projections follow` applies new events as they come, and stops cleanly on Ctrl-C."""
    follower = subprocess.Popen(  # noqa: S603 (this interpreter, our own module)
        [
            sys.executable,
            "-m",
            "consent_ledger.cli",
            "projections",
            "follow",
            "--db",
            db,
            "--poll-interval",
            "0.1",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ok(runner, "opt-out", BRUNO, "--db", db, "--all", "--method", "whatsapp-thread")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            views = json.loads(
                ok(runner, "projections", "status", "--db", db, "--format", "json").stdout
            )
            if views[0]["position"] and {v["lag"] for v in views} == {0}:
                break
            time.sleep(0.1)
        assert {v["lag"] for v in views} == {0}
    finally:
        follower.send_signal(signal.SIGINT)
        _, stderr = follower.communicate(timeout=20)

    assert follower.returncode == 0, stderr
    head = views[0]["head"]
    assert f"stopped: consent-status at {head}, audit-log at {head}" in stderr


def test_an_audience_no_one_can_receive_is_an_error(db: str, runner: CliRunner) -> None:
    """A MARKETING template for a utility category: an error that says why, not an empty list."""
    result = fails(
        runner, "audience", "--db", db, "-c", "order-updates", "--template-category", "MARKETING"
    )

    assert result.stderr == (
        "Error: a MARKETING template needs consent to a marketing category; "
        "order-updates is UTILITY\n"
    )
