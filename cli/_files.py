"""Files a command writes: whole or not at all, readable by their owner only."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

import click

if TYPE_CHECKING:
    from collections.abc import Iterator

STDOUT = "-"


@contextlib.contextmanager
def written(path: Path | str) -> Iterator[BinaryIO]:
    """A binary handle on stdout (``-``), or on a file that appears only when complete.

    A regular file (or a path where nothing is yet) is written beside its target under a
    temporary name (mode 0600: exports and dossiers may hold personal data), flushed to
    disk, then renamed over it; if the block fails, nothing is left behind. A symbolic
    link is followed: its target is written, the link stays. Anything else at the path (a
    FIFO, a device such as ``/dev/null``, a socket) is written straight into, never
    replaced.

    Raises:
        click.ClickException: the file cannot be written there.
    """
    if str(path) == STDOUT:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(os.path.realpath(path))
    try:
        special = target.exists() and not target.is_file()
    except OSError as e:
        raise _cannot_write(path, e) from e
    writing = _into if special else _replacing
    with writing(target, shown=Path(path)) as out:
        yield out


@contextlib.contextmanager
def _into(target: Path, *, shown: Path) -> Iterator[BinaryIO]:
    """A handle on what is at ``target`` (a FIFO, a device), written straight into."""
    try:
        out = target.open("wb")
    except OSError as e:
        raise _cannot_write(shown, e) from e
    with out:
        try:
            yield out
            out.flush()
        except OSError as e:
            raise _cannot_write(shown, e) from e


@contextlib.contextmanager
def _replacing(target: Path, *, shown: Path) -> Iterator[BinaryIO]:
    """A handle on a temporary file that replaces ``target`` when the block completes."""
    import tempfile  # noqa: PLC0415 (it loads shutil, bz2, lzma: not for a check on stdout)

    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as e:
        raise _cannot_write(shown, e) from e
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).replace(target)
    except OSError as e:
        Path(temporary).unlink(missing_ok=True)
        raise _cannot_write(shown, e) from e
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _cannot_write(path: Path | str, error: OSError) -> click.ClickException:
    return click.ClickException(f"cannot write {path}: {error.strerror or error}")


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
