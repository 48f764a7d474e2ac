"""What a command reads: arguments and files of UTF-8 text, or an error naming the byte."""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
import orjson

if TYPE_CHECKING:
    from collections.abc import Iterator

STDIN = "-"
_UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class TextInput:
    """A file of text a command reads whole, or stdin; named as the user wrote it."""

    name: str
    path: Path | None  # None: stdin

    @property
    def is_stdin(self) -> bool:
        """Whether this is stdin."""
        return self.path is None

    def read(self) -> str:
        """The whole text.

        Raises:
            click.ClickException: it cannot be read, or it is not UTF-8.
        """
        if self.path is None:
            return decoded(sys.stdin.buffer.read(), "stdin")
        return read_text(self.path, self.name)


class TextInputType(click.ParamType):  # type: ignore[type-arg]  # generic only since click 8.3
    """A file of UTF-8 text, or ``-`` for stdin; checked now, read when the command asks."""

    name = "FILE"
    _path = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> TextInput:
        """A :class:`TextInput`, or a usage error if there is no readable file there."""
        if isinstance(value, TextInput):
            return value
        if value == STDIN:
            return TextInput("stdin", None)
        return TextInput(str(value), self._path.convert(value, param, ctx))


TEXT_INPUT = TextInputType()


def read_text(path: Path, name: str | None = None) -> str:
    """The UTF-8 text of the file at ``path``.

    Raises:
        click.ClickException: it cannot be read, or it is not UTF-8 (the byte is named).
    """
    shown = name or str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        msg = f"{shown}: cannot read it: {e.strerror or e}"
        raise click.ClickException(msg) from e
    return decoded(data, shown)


def decoded(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text.

    Raises:
        click.ClickException: it is not UTF-8; the first bad byte, its offset and line are
            named (bytes that are not text are a wrong or damaged file: nothing of it is
            taken, rather than a guess at what was meant).
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        msg = (
            f"{name}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}, line {line})"
        )
        if data.startswith(_UTF16_MARKS):
            msg += "; it looks like UTF-16: save it as UTF-8"
        raise click.ClickException(msg) from None


def refuse_undecodable(args: list[str]) -> None:
    """Refuse a command-line argument that is not UTF-8 text.

    Python hands such bytes over as lone surrogates (``surrogateescape``); they would fail
    later, wherever the text is encoded (an id hashed, a line printed).

    Raises:
        click.UsageError: names the first such argument, its bad bytes escaped.
    """
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            try:
                shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
                shown = arg.encode("utf-8", "backslashreplace").decode("utf-8")
            msg = f"an argument is not UTF-8 text: '{shown}'"
            raise click.UsageError(msg) from None


def input_rows(
    text: str, problems: list[str], *, required: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a CSV (with a header naming ``required``) or JSON Lines text, by line number.

    What cannot be read is added to ``problems`` (``line N: ...``) and skipped.
    """
    source = io.StringIO(text, newline=None)  # universal newlines, as a text file is read
    if text.lstrip().startswith("{"):
        yield from _json_rows(source, problems)
    else:
        yield from _csv_rows(source, problems, required)


def _json_rows(source: TextIO, problems: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            problems.append(f"line {number}: not JSON ({e.msg})")
            continue
        if not isinstance(value, dict):
            problems.append(f"line {number}: not a JSON object")
            continue
        yield number, value


def _csv_rows(
    source: TextIO, problems: list[str], required: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows of a CSV file; a row csv cannot read is a problem, and reading goes on.

    csv drops the rest of the line it failed on and starts again at the next one.
    """
    reader = csv.DictReader(source)
    try:
        header = reader.fieldnames
    except csv.Error as e:
        problems.append(f"line 1: {_csv_problem(e)}")
        return
    if header is None or required not in header:
        problems.append(f"line 1: the CSV header has no {required!r} column")
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # line_num counts the lines of the rows read whole
            problems.append(f"line {reader.line_num + 1}: {_csv_problem(e)}")
            continue
        yield reader.line_num, row


def _csv_problem(error: csv.Error) -> str:
    # No field of an input (an identifier, a category, a sender) comes near csv's limit:
    # a field over it is a broken quote or the wrong file, reported as such.
    if "field larger than field limit" in str(error):
        return f"a field is longer than {csv.field_size_limit():,} characters"
    return f"not CSV ({error})"
