"""From the command line: a person whose data key is gone can opt out, and gets no message."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING

import pytest
from consent_ledger.cli import main

from tests.cli.conftest import new_ledger, ok
from tests.cli.test_cli import ADA, opt_in

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where Ada opted in to offers, then lost her data key."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    opt_in(runner, path)
    with contextlib.closing(sqlite3.connect(path)) as lite, lite:
        lite.execute("DELETE FROM subject_keys")
    return path


def test_an_opt_out_is_recorded_and_says_what_it_left_out(db: str, runner: CliRunner) -> None:
    result = ok(
        runner, "opt-out", ADA, "--all", "--method", "sms-keyword", "--reason", "STOP", "--db", db
    )

    assert result.stdout.startswith("Recorded OptedOut #3 for +447700900123")
    assert result.stderr == (
        "Note: the person's data key is gone (their personal data was erased): "
        "recorded without its reason\n"
    )


def test_a_check_is_denied_as_erased(db: str, runner: CliRunner) -> None:
    result = runner.invoke(main, ["check", ADA, "-c", "offers", "--db", db])

    assert result.exit_code == 3
    assert result.stdout.startswith("DENIED: erased (the person's personal data was erased")
