"""Files commands write: a regular file is replaced whole; links and special files never are."""

from __future__ import annotations

import os
import stat
import threading
from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import fails, new_ledger, ok
from tests.cli.test_cli import ADA, opt_in

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner

WRITERS = {
    "export": ("export", "-o"),
    "bundle": ("export", "--bundle"),
    "audience": ("audience", "-c", "offers", "-o"),
    "dossier": ("dossier", ADA, "-o"),
}


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where Ada opted in to offers."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    opt_in(runner, path)
    return path


@pytest.mark.parametrize("writer", WRITERS)
def test_a_symlink_is_followed_not_replaced(
    db: str, runner: CliRunner, tmp_path: Path, writer: str
) -> None:
    target = tmp_path / "kept" / "out.file"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link"
    link.symlink_to(target)

    ok(runner, *WRITERS[writer], str(link), "--db", db)

    assert link.is_symlink()
    assert link.resolve() == target
    assert target.read_bytes() not in {b"", b"old"}
    assert [p.name for p in target.parent.iterdir()] == ["out.file"]  # no temporary left


@pytest.mark.parametrize("writer", WRITERS)
def test_a_fifo_is_written_into_not_replaced(
    db: str, runner: CliRunner, tmp_path: Path, writer: str
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()

    ok(runner, *WRITERS[writer], str(fifo), "--db", db)
    reader.join(timeout=10)

    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert received
    assert received[0]


def test_a_regular_file_is_replaced_whole_and_private(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    out.write_text("old")

    ok(runner, "export", "-o", str(out), "--db", db)

    assert out.read_text().count("\n") >= 2
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_folder_is_refused(db: str, runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()

    result = fails(runner, "export", "-o", str(folder), "--db", db, code=2)

    assert "is a directory" in result.stderr
    assert list(folder.iterdir()) == []
