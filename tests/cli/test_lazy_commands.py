"""Commands load when they run: ``--help`` lists them all, a ``check`` loads only its own."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import click
import pytest
from click.testing import CliRunner
from consent_ledger.cli import COMMANDS, main

from tests.cli.conftest import fails, new_ledger, ok

if TYPE_CHECKING:
    from pathlib import Path

ADA = "+447700900123"
UNRELATED = (
    "consent_ledger.cli.dossier",
    "consent_ledger.cli.export",
    "consent_ledger.cli.ingest",
    "consent_ledger.cli.receipts",
    "consent_ledger.evidence.bundle",
    "consent_ledger.reports.receipts",
    "consent_ledger.whatsapp.parser",
    "jinja2",
)


def loaded_after(*args: str, cwd: Path) -> set[str]:
    """The modules a fresh interpreter holds after running ``consent-ledger ARGS``."""
    code = textwrap.dedent(f"""
        import sys
        from consent_ledger.cli import main
        try:
            main({list(args)!r})
        except SystemExit:
            pass
        print(" ".join(sys.modules))
    """)
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed code)
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=cwd
    )
    return set(result.stdout.splitlines()[-1].split())


def eager_group() -> click.Group:
    """The same group with every command imported and added, as it was before."""
    ctx = click.Context(main)
    group = click.Group("main", params=main.params, help=main.help)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None
        group.add_command(command, name)
    return group


@pytest.mark.parametrize("width", [80, 100, 120])
def test_help_lists_every_command_as_the_commands_themselves_would(width: int) -> None:
    runner = CliRunner()

    lazy = runner.invoke(main, ["--help"], terminal_width=width).stdout
    eager = runner.invoke(eager_group(), ["--help"], terminal_width=width).stdout

    assert lazy.split("Commands:")[1] == eager.split("Commands:")[1]
    assert len(lazy.split("Commands:")[1].strip().splitlines()) == len(COMMANDS)


def test_each_summary_is_the_first_paragraph_of_its_command_help() -> None:
    ctx = click.Context(main)
    for name, (_, summary) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None, name
        first = inspect.cleandoc(command.help or "").partition("\n\n")[0]

        assert summary == " ".join(first.split()), name


def test_an_unknown_command_is_still_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["chek"])

    assert result.exit_code == 2
    assert "No such command 'chek'" in result.stderr


def test_help_imports_no_command_module(tmp_path: Path) -> None:
    loaded = loaded_after("--help", cwd=tmp_path)

    commands = {path.split(":")[0] for path, _ in COMMANDS.values()}
    assert commands & loaded == set()


NOT_FOR_A_CHECK = (
    *UNRELATED,
    # Services and event models a check against a caught-up view does not use.
    "consent_ledger.application.catalogue",
    "consent_ledger.application.queries",
    "consent_ledger.application.recording",
    "consent_ledger.application.signals",
    "consent_ledger.model.commands",
    "consent_ledger.model.consent_record",
    "consent_ledger.model.history",
    "consent_ledger.projections.audit_rows",
    # Libraries it does not need: pydantic (and the plugin lookup of its first schema),
    # importlib.resources (the presets are files), phonenumbers for a number in E.164
    # form, cryptography, psycopg for SQLite.
    "pydantic",
    "importlib.metadata",
    "importlib.resources",
    "phonenumbers",
    "cryptography",
    "psycopg",
)


@pytest.fixture
def ledger_db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where Ada opted in to order updates and offers, then withdrew offers."""
    db = new_ledger(runner, str(tmp_path / "ledger.db"))
    ok(runner, "opt-in", ADA, "-c", "order-updates,offers", "--notice", "whatsapp-optin@1",
       "--method", "web-form", "--db", db)  # fmt: skip
    ok(runner, "opt-out", ADA, "-c", "offers", "--method", "whatsapp-thread", "--db", db)
    return db


@pytest.mark.parametrize(
    ("category", "verdict"), [("order-updates", "ALLOWED"), ("offers", "DENIED")]
)
def test_a_check_imports_only_what_it_uses(
    category: str, verdict: str, ledger_db: str, tmp_path: Path, runner: CliRunner
) -> None:
    caught_up = runner.invoke(main, ["check", ADA, "-c", category, "--db", ledger_db])
    assert caught_up.stdout.startswith(verdict)

    loaded = loaded_after("check", ADA, "-c", category, "--db", ledger_db, cwd=tmp_path)

    assert "consent_ledger.cli.sending" in loaded
    assert sorted(name for name in NOT_FOR_A_CHECK if name in loaded) == []


class TestRecipientsAsWritten:
    """A number in E.164 form is looked up as it is; any other text is read in full."""

    def test_another_spelling_of_a_number_finds_the_person(
        self, ledger_db: str, runner: CliRunner
    ) -> None:
        result = ok(runner, "check", "+44 (0)7700-900123", "-c", "order-updates", "--db", ledger_db)

        assert result.stdout.startswith("ALLOWED: consented")
        assert "recipient +447700900123;" in result.stdout

    def test_an_impossible_number_is_still_an_error(
        self, ledger_db: str, runner: CliRunner
    ) -> None:
        result = fails(runner, "check", "+4477009", "-c", "order-updates", "--db", ledger_db)

        assert result.stderr.startswith("Error: '+4477009' is a local number")

    def test_a_number_nobody_has_is_no_consent(self, ledger_db: str, runner: CliRunner) -> None:
        result = runner.invoke(main, ["check", "+447700900999", "-c", "offers", "--db", ledger_db])

        assert result.exit_code == 3
        assert result.stdout.startswith("DENIED: no-consent")
