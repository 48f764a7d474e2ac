"""What the command-line tests share: a runner, and calls that expect success or failure."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result
from consent_ledger.cli import main

if TYPE_CHECKING:
    from collections.abc import Iterator

NOTICE_TEXT = "Yes, Acme Outfitters may message me on WhatsApp about orders and offers."


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def new_ledger(runner: CliRunner, path: str) -> str:
    """Create an SQLite ledger with business acme and notice whatsapp-optin@1; return its path."""
    ok(runner, "init", "--db", path, "--business", "acme", "--business-name", "Acme Outfitters")
    ok(
        runner,
        "notice",
        "publish",
        "whatsapp-optin",
        "--db",
        path,
        "--language",
        "en",
        "-c",
        "order-updates,offers",
        input=NOTICE_TEXT,
    )
    return path


def ok(runner: CliRunner, *args: str, input: str | None = None) -> Result:  # noqa: A002
    """Run a command that must succeed; return its result."""
    result = runner.invoke(main, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def fails(runner: CliRunner, *args: str, code: int = 1, input: str | None = None) -> Result:  # noqa: A002
    """Run a command that must fail with ``code``, nothing on stdout and no traceback."""
    result = runner.invoke(main, list(args), input=input)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


@contextlib.contextmanager
def unraisable_exceptions() -> Iterator[list[str]]:
    """Collect the exceptions Python can only print ("Exception ignored in ...")."""
    seen: list[str] = []
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        seen.append(f"{type(unraisable.exc_value).__name__}: {unraisable.exc_value}")

    sys.unraisablehook = hook
    try:
        yield seen
    finally:
        sys.unraisablehook = previous
