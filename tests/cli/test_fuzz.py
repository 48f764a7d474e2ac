"""Random command lines never end in a traceback, and a failing one writes nothing.

The ``ci`` profile runs a fixed, repeatable set of examples (derandomized) within its
budget; set ``CONSENT_LEDGER_FUZZ_EXAMPLES`` to run many more, with fresh randomness
(``python -m tests.cli.fuzz_survey N`` counts what they find, by kind, instead of stopping
at the first).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings

from tests.cli.fuzz_runs import prepare, problems, run
from tests.cli.fuzzing import Invocation, commands, invocations

if TYPE_CHECKING:
    from pathlib import Path

EXAMPLES_ENV = "CONSENT_LEDGER_FUZZ_EXAMPLES"


def _settings() -> settings:
    """The profile's number of examples (ci: 200, about 20 s), the same ones every run."""
    wanted = os.environ.get(EXAMPLES_ENV)
    if wanted:
        return settings(max_examples=int(wanted), derandomize=False, database=None)
    return settings(derandomize=True)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(tmp_path_factory.mktemp("fuzz"))


def test_every_command_is_fuzzed() -> None:
    """The walk finds every command, lazily loaded or not, but the ones that never end."""
    found = {" ".join(c.path) for c in commands()}

    assert {"check", "audience", "audit", "export", "ingest whatsapp", "notice publish"} <= found
    assert "projections follow" not in found


@_settings()
@given(invocation=invocations())
def test_no_command_line_ends_in_a_traceback_or_half_written(
    prepared: Path, invocation: Invocation
) -> None:
    """No traceback, exit 0-3, and a failing command prints no data and stores nothing."""
    outcome = run(invocation, prepared)

    assert problems(invocation, outcome) == [], str(invocation)
