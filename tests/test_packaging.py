"""The package installs one command, and its core stays free of the CLI and projections."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import consent_ledger

ROOT = Path(__file__).resolve().parents[1]


def test_the_console_script_is_consent_ledger() -> None:
    [script] = entry_points(group="console_scripts", name="consent-ledger")

    assert script.value == "consent_ledger.cli:main"


def test_importing_the_library_loads_no_click() -> None:
    code = "import sys, consent_ledger; print('click' in sys.modules)"
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed code)
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )

    assert result.stdout.strip() == "False"


def test_the_core_never_imports_the_cli_or_projections() -> None:
    core = Path(consent_ledger.__file__).resolve().parent
    offenders = [
        path.name
        for path in core.glob("*.py")
        if any(
            needle in path.read_text()
            for needle in ("import click", "consent_ledger.cli", "consent_ledger.projections")
        )
    ]

    assert offenders == []
