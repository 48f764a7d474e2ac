"""Files a command writes: whole or not at all, readable by their owner only."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

import click

if TYPE_CHECKING:
    from collections.abc import Iterator

STDOUT = "-"


@contextlib.contextmanager
def written(path: Path | str) -> Iterator[BinaryIO]:
    """A binary handle on stdout (``-``), or on a file that appears only when complete.

    The file is written beside ``path`` under a temporary name (mode 0600: exports and
    dossiers may hold personal data), flushed to disk, then renamed over ``path``; if
    the block fails, nothing is left behind.

    Raises:
        click.ClickException: the file cannot be written there.
    """
    if str(path) == STDOUT:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:
        msg = f"cannot write {path}: {e.strerror or e}"
        raise click.ClickException(msg) from e
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).replace(path)
    except OSError as e:
        Path(temporary).unlink(missing_ok=True)
        msg = f"cannot write {path}: {e.strerror or e}"
        raise click.ClickException(msg) from e
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def written_text(path: Path | str) -> Iterator[TextIO]:
    """:func:`written`, as UTF-8 text (newlines written as given: csv writes its own)."""
    with written(path) as out:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        try:
            yield text
            text.flush()
        finally:
            text.detach()  # the binary handle is written's to close
