"""--db, --key-file and --business before the command, as git and psql take them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import fails, new_ledger, ok

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner

ADA = "+44 7700 900123"


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """An SQLite ledger of business acme (the default), where Ada opted in to offers."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    ok(runner, "opt-in", ADA, "--db", path, "-c", "offers", "--notice", "whatsapp-optin@1",
       "--method", "web-form")  # fmt: skip
    return path


class TestBeforeTheCommand:
    def test_db_before_the_command_reads_the_same_ledger(self, db: str, runner: CliRunner) -> None:
        before = ok(runner, "--db", db, "status", ADA)

        assert before.stdout == ok(runner, "status", ADA, "--db", db).stdout
        assert "offers" in before.stdout

    def test_db_before_a_group_command_reaches_its_subcommand(
        self, db: str, runner: CliRunner
    ) -> None:
        result = ok(runner, "--db", db, "notice", "list", "--format", "csv")

        assert "whatsapp-optin" in result.stdout

    def test_key_file_before_the_command_opens_a_ledger_whose_key_is_elsewhere(
        self, db: str, tmp_path: Path, runner: CliRunner
    ) -> None:
        moved = tmp_path / "elsewhere.key"
        (tmp_path / "ledger.db.key").rename(moved)

        result = ok(runner, "--key-file", str(moved), "--db", db, "status", ADA)

        assert result.stdout.startswith("Consent of +447700900123 towards acme now")

    def test_business_before_the_command_picks_the_business(
        self, db: str, runner: CliRunner
    ) -> None:
        ok(runner, "business", "register", "bravo", "--name", "Bravo Shop", "--db", db)

        result = fails(runner, "--db", db, "--business", "bravo", "history", ADA)

        assert result.stderr == "Error: business 'bravo' has no consent record for +447700900123\n"

    def test_business_before_init_registers_the_default_business(
        self, tmp_path: Path, runner: CliRunner
    ) -> None:
        db = str(tmp_path / "new.db")

        result = ok(runner, "--business", "acme", "--db", db, "init", "--business-name", "Acme")

        assert "Default business: acme (Acme)" in result.stdout

    def test_db_before_demo_is_where_the_demo_is_built(
        self, tmp_path: Path, runner: CliRunner
    ) -> None:
        db = tmp_path / "demo.db"

        result = ok(runner, "--db", str(db), "demo")

        assert f"Demo ledger: {db}" in result.stdout
        assert db.exists()


class TestWhichWins:
    def test_the_value_after_the_command_wins(
        self, db: str, tmp_path: Path, runner: CliRunner
    ) -> None:
        missing = str(tmp_path / "missing.db")

        ok(runner, "--db", missing, "status", ADA, "--db", db)
        result = fails(runner, "--db", db, "status", ADA, "--db", missing)

        assert result.stderr.startswith(f"Error: no ledger at {missing}")

    def test_the_value_before_the_command_beats_the_environment(
        self, db: str, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CONSENT_LEDGER_DB", str(tmp_path / "missing.db"))
        monkeypatch.setenv("CONSENT_LEDGER_BUSINESS", "nobody")

        result = ok(runner, "--db", db, "--business", "acme", "status", ADA)

        assert "towards acme" in result.stdout

    def test_the_environment_still_reaches_every_command(
        self, db: str, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CONSENT_LEDGER_DB", db)

        assert "towards acme" in ok(runner, "status", ADA).stdout

    def test_an_unknown_global_option_is_a_usage_error(self, runner: CliRunner) -> None:
        result = fails(runner, "--ledger", "x.db", "status", ADA, code=2)

        assert "No such option '--ledger'" in result.stderr


def test_the_help_names_the_global_options_and_which_wins(runner: CliRunner) -> None:
    result = ok(runner, "--help")

    for option in ("--db TEXT", "--key-file FILE", "--business TEXT"):
        assert option in result.stdout
    assert "the one after the command wins" in result.stdout
