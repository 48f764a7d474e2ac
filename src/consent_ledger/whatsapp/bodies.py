"""Reading webhook bodies from a file: JSON Lines, one JSON array of bodies, or one body.

:func:`read_payloads` yields each body with its :class:`Position` (its line, and its index
in an array), or a :class:`~consent_ledger.whatsapp.parser.Problem` where the text is not
a JSON object, so that a caller can report it and read on.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

from consent_ledger.whatsapp._json import JSONObject, type_name
from consent_ledger.whatsapp.parser import Problem

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


class Position(NamedTuple):
    """Where a body is in its input: its line, and its index in a JSON array."""

    line: int
    item: int | None = None

    def __str__(self) -> str:
        """``line 3``, or ``item 2 (line 5)`` in an array (items count from 0)."""
        if self.item is None:
            return f"line {self.line}"
        return f"item {self.item} (line {self.line})"


def read_payloads(lines: Iterable[str]) -> Iterator[tuple[Position, JSONObject | Problem]]:
    """Read webhook bodies from text: JSON Lines, one JSON array, or one multi-line body.

    The input is JSON Lines (one body per line; blank lines are skipped) unless it starts
    with ``[`` (a JSON array of bodies) or its first line is not JSON on its own but the
    whole input is one body (pretty-printed). A line that is not JSON, or a value that is
    not an object, is reported with its position and the rest is read on; in an array, a
    broken item ends the array (what follows cannot be found reliably).

    Args:
        lines: The input, line by line (an open text file, ``sys.stdin``).

    Yields:
        ``(position, body)`` or ``(position, problem)``, in input order.
    """
    source = iter(lines)
    head: list[str] = []
    for line in source:
        head.append(line)
        if line.strip():
            break
    else:
        return
    first_line = len(head)
    first = head[-1].lstrip().lstrip("\ufeff")
    if first.startswith("["):
        yield from _read_array("".join(head) + "".join(source))
        return
    try:
        value = _loads(first)
    except ValueError:
        rest = list(source)
        whole = "".join(head) + "".join(rest)
        try:
            value = _loads(whole.lstrip().lstrip("\ufeff"))
        except ValueError:
            yield from _read_lines(enumerate([*head, *rest], start=1))
            return
        yield Position(first_line), _as_body(value)
        return
    yield Position(first_line), _as_body(value)
    yield from _read_lines(enumerate(source, start=first_line + 1))


def _read_lines(numbered: Iterable[tuple[int, str]]) -> Iterator[tuple[Position, Any]]:
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            value = _loads(line.lstrip("\ufeff").rstrip("\r\n"))
        except ValueError as e:
            yield Position(number), Problem("", _not_json(e, one_line=True))
            continue
        yield Position(number), _as_body(value)


def _read_array(text: str) -> Iterator[tuple[Position, Any]]:
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    lines = _LineCounter(text)
    at = _skip_space(text, text.index("[") + 1)
    index = 0
    if text.startswith("]", at):
        at += 1
    else:
        while True:
            line = lines.at(at)
            try:
                value, at = decoder.raw_decode(text, at)
            except (ValueError, RecursionError) as e:
                msg = f"{_not_json(e)}; the rest of the array cannot be read"
                yield Position(line, index), Problem("", msg)
                return
            yield Position(line, index), _as_body(value)
            index += 1
            at = _skip_space(text, at)
            if text.startswith(",", at):
                at = _skip_space(text, at + 1)
                continue
            if text.startswith("]", at):
                at += 1
                break
            msg = "not JSON: expected ',' or ']' after an item of the array"
            yield Position(lines.at(at), index), Problem("", msg)
            return
    if text[at:].strip():
        yield Position(lines.at(at)), Problem("", "not JSON: text after the end of the array")


class _LineCounter:
    """Line numbers of offsets in a text, for offsets that only grow (linear, not quadratic)."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _reject_constant(name: str) -> Any:
    msg = f"{name} is not a JSON number"
    raise ValueError(msg)


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        msg = "nested too deeply"
        raise ValueError(msg) from None


def _not_json(error: BaseException, *, one_line: bool = False) -> str:
    if isinstance(error, json.JSONDecodeError):
        where = "" if one_line else f"line {error.lineno}, "
        return f"not JSON: {error.msg} ({where}column {error.colno})"
    if isinstance(error, RecursionError):
        return "not JSON: nested too deeply"
    return f"not JSON: {error}"


def _as_body(value: Any) -> JSONObject | Problem:
    if isinstance(value, dict):
        return value
    return Problem("", f"not a webhook body: expected a JSON object, got {type_name(value)}")
