"""Reading JSON values out of a webhook body, with the path of what is wrong.

Each reader takes an object, a key and the object's path in the body (such as
``entry[0].changes[1].value``) and returns the value in the type asked for, or raises
:class:`MalformedError` naming the path and what is wrong with it. The parser catches
that per item, so one bad item does not stop the rest of a body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

JSONObject = dict[str, Any]

_MAX_UNIX_TIME = 10**11  # year 5138: anything larger is not a time in seconds
_MAX_ID_DIGITS = 64  # Graph ids are ~15 digits; the ledger keeps a sender id in 64 characters


class MalformedError(Exception):
    """An item of a body cannot be read; caught per item."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def type_name(value: object) -> str:
    """How a value reads in a message: ``an object``, ``a string``, ``null``..."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def as_object(value: object, path: str) -> JSONObject:
    """``value`` if it is a JSON object."""
    if not isinstance(value, dict):
        raise MalformedError(path, f"expected an object, got {type_name(value)}")
    return value


def required(item: JSONObject, key: str, path: str) -> object:
    """``item[key]``, which must be there and not null."""
    value = item.get(key)
    if value is None:
        raise MalformedError(path, f"no {key!r}")
    return value


def array(item: JSONObject, key: str, path: str) -> list[Any]:
    """``item[key]``, which must be an array."""
    value = required(item, key, path)
    if not isinstance(value, list):
        raise MalformedError(path, f"{key!r} is {type_name(value)}, not an array")
    return value


def optional_array(item: JSONObject, key: str, path: str) -> list[Any]:
    """``item[key]`` if it is there (an array), else an empty list."""
    return array(item, key, path) if item.get(key) is not None else []


def string(item: JSONObject, key: str, path: str) -> str:
    """An id-like value: a non-empty string, or a whole number (Meta writes some ids so)."""
    value = required(item, key, path)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedError(path, f"{key!r} is {type_name(value)}, not a string")
    text = str(value)
    if not text.strip():
        raise MalformedError(path, f"{key!r} is empty")
    return text


def numeric_id(item: JSONObject, key: str, path: str) -> str:
    """A Graph API object id (a business number's, an account's): digits only."""
    text = string(item, key, path)
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_ID_DIGITS):
        where, msg = f"{path}.{key}", f"expected an id of digits, got {text[:40]!r}"
        raise MalformedError(where, msg)
    return text


def optional_string(item: JSONObject, key: str, path: str) -> str | None:
    """:func:`string` if ``key`` is there and not null, else None."""
    return string(item, key, path) if item.get(key) is not None else None


def text(item: JSONObject, key: str, path: str) -> str:
    """A text a person or Meta wrote: any string, even blank."""
    value = required(item, key, path)
    if not isinstance(value, str):
        raise MalformedError(path, f"{key!r} is {type_name(value)}, not a string")
    return value


def optional_text(item: JSONObject, key: str, path: str) -> str | None:
    """:func:`text` if ``key`` is there and not null, else None."""
    return text(item, key, path) if item.get(key) is not None else None


def integer(item: JSONObject, key: str, path: str) -> int:
    value = required(item, key, path)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedError(path, f"{key!r} is {type_name(value)}, not a whole number")
    return value


def unix_time(item: JSONObject, key: str, path: str) -> datetime:
    """A Unix time in seconds, as Meta writes it: a number, or digits in a string."""
    value = required(item, key, path)
    seconds: int | None = None
    if isinstance(value, str) and value.isdigit():
        seconds = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    if seconds is None or not 0 < seconds < _MAX_UNIX_TIME:
        raise MalformedError(path, f"{key!r} is not a Unix time in seconds: {value!r}")
    return datetime.fromtimestamp(seconds, UTC)


def canonical(value: object, path: str) -> str:
    """``value`` as canonical JSON (sorted keys, no whitespace): evidence and digests."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError as e:
        raise MalformedError(path, f"cannot be kept as evidence: {e}") from None
