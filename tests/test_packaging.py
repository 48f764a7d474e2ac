"""The package installs one command, and its core stays free of the CLI and projections."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import consent_ledger
from consent_ledger.reports.dossier.render import environment

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


def test_the_library_and_its_cli_load_no_jinja2_until_a_dossier_is_rendered() -> None:
    code = "import sys, consent_ledger, consent_ledger.cli; print('jinja2' in sys.modules)"
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed code)
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )

    assert result.stdout.strip() == "False"


def test_every_dossier_template_is_package_data() -> None:
    """A template the patterns miss would be left out of the wheel, yet found in a checkout."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package = "consent_ledger.reports.dossier.templates"
    patterns = setuptools["package-data"][package]

    templates = environment().list_templates()

    assert package in setuptools["packages"]
    assert {"dossier.html", "dossier.css", "_macros.html"} <= set(templates)
    unshipped = [
        t for t in templates if "/" in t or not any(fnmatch.fnmatch(t, p) for p in patterns)
    ]
    assert unshipped == []  # package data patterns do not reach into subfolders


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
