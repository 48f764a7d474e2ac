"""``consent-ledger dossier``: one person's dossier written to a file, or to stdout."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest
from consent_ledger.cli import main

from tests.cli.conftest import NOTICE_TEXT, new_ledger, ok
from tests.test_dossier import Page, assert_every_proof_verifies

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner, Result

ADA = "+44 7700 900123"
BRUNO = "+1 202-555-0143"


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where Ada opted in to offers and order updates, then replied STOP to offers."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    grant = ("-c", "offers,order-updates", "--notice", "whatsapp-optin@1")
    ok(runner, "opt-in", ADA, "--db", path, *grant, "--method", "web-form", "--evidence", "box 3")
    ok(runner, "opt-out", ADA, "--db", path, "-c", "offers", "--method", "sms-keyword")
    return path


def run(runner: CliRunner, *args: str) -> Result:
    result = runner.invoke(main, ["dossier", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def refused(runner: CliRunner, *args: str) -> Result:
    result = runner.invoke(main, ["dossier", *args])
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def test_writes_dossier_subject_html_here_and_prints_its_path(
    db: str, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = run(runner, ADA, "--db", db)

    written = tmp_path / result.stdout.strip()
    assert written.name.startswith("dossier-0")
    assert written.name.endswith(".html")
    page = Page(written.read_text(encoding="utf-8"))
    assert written.name == f"dossier-{page.by_class('subject-id')[0].text}.html"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600  # it holds personal data
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_file_holds_the_events_the_notice_and_a_proof_the_auditor_can_check(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "ada.html"
    key = ok(runner, "checkpoint", "--print-key", "--db", db).stdout.strip()

    result = run(runner, ADA, "--db", db, "--output", str(target))

    assert result.stdout == f"{target}\n"
    page = Page(target.read_text(encoding="utf-8"))
    assert [e.attrs["data-event-type"] for e in page.by_class("event")] == [
        "SubjectRegistered",
        "OptedIn",
        "OptedOut",
    ]
    assert page.by_class("notice-text")[0].text == NOTICE_TEXT
    assert "box 3" in page.by_id("event-2").text
    rows = [row for row in page.by_tag("tr") if "data-category" in row.attrs]
    states = {row.attrs["data-category"]: row.attrs["data-state"] for row in rows}
    assert states == {"offers": "withdrawn", "order-updates": "granted"}
    assert len(assert_every_proof_verifies(page, key)) == 3


def test_dash_writes_the_document_to_stdout(db: str, runner: CliRunner) -> None:
    result = run(runner, ADA, "--db", db, "-o", "-")

    assert result.stdout.startswith("<!DOCTYPE html>\n")
    assert result.stdout.endswith("</html>\n")
    assert Page(result.stdout).by_id("identifier").text == "+447700900123"


def test_an_existing_file_is_replaced_whole(db: str, runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "ada.html"
    target.write_text("an older dossier")

    run(runner, ADA, "--db", db, "-o", str(target))

    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_unknown_person_is_an_error(db: str, runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "bruno.html"

    result = refused(runner, BRUNO, "--db", db, "-o", str(target))

    assert result.stderr == "Error: business 'acme' has no consent record for +12025550143\n"
    assert not target.exists()


def test_an_unwritable_path_is_an_error_and_leaves_nothing(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "ada.html"

    result = refused(runner, ADA, "--db", db, "-o", str(target))

    assert result.stderr == (f"Error: cannot write {target}: No such file or directory\n")
    assert not target.parent.exists()


def test_a_directory_in_the_way_is_an_error_and_leaves_nothing(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "ada.html").mkdir()

    result = refused(runner, ADA, "--db", db, "-o", str(tmp_path / "ada.html"))

    assert result.stderr.startswith(f"Error: cannot write {tmp_path / 'ada.html'}: ")
    assert not list(tmp_path.glob(".ada.html.*"))


def test_the_help_has_an_example(runner: CliRunner) -> None:
    result = run(runner, "--help")

    assert "consent-ledger dossier" in result.stdout
    assert "--output" in result.stdout
