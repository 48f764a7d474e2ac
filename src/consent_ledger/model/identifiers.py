"""Identifiers of people: phone numbers, WhatsApp ids, business-scoped user ids, e-mail.

An identifier is always normalised before it is looked up or stored, so that
``+44 7700 900123``, ``07700 900123`` (with region GB) and ``+447700900123`` find
the same person. Phone numbers are normalised to E.164 with ``phonenumbers``, imported
when a number is first read in full: a lookup of a number already in E.164 form
(:func:`as_identifier`) needs none of it, and importing it is a large part of the start
of a process that checks one send.
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from consent_ledger.exceptions import InvalidIdentifierError

if TYPE_CHECKING:
    import phonenumbers


class IdentifierKind(StrEnum):
    """The kinds of identifier a person can be known by."""

    PHONE = "phone"
    WA = "wa"
    BSUID = "bsuid"
    EMAIL = "email"


_PREFIXES = {
    "tel": IdentifierKind.PHONE,
    "phone": IdentifierKind.PHONE,
    "wa": IdentifierKind.WA,
    "bsuid": IdentifierKind.BSUID,
    "email": IdentifierKind.EMAIL,
}
_WA_ID = re.compile(r"\d{5,20}")
_BSUID = re.compile(r"([A-Za-z]{2})((?:\.ENT)?\.[A-Za-z0-9]{1,128})")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_SEPARATORS = re.compile(r"[\s().-]")


def address(kind: str, value: str) -> str:
    """An identifier of ``kind`` as the ledger prints it: E.164 for phones, ``kind:value`` else."""
    return value if kind == IdentifierKind.PHONE else f"{kind}:{value}"


class Identifier(NamedTuple):
    """A normalised identifier of one person: its kind and its canonical value."""

    kind: IdentifierKind
    value: str

    @classmethod
    def parse(cls, text: str, region: str | None = None) -> Identifier:
        """Read an identifier as people write it.

        A bare value is a phone number, in international form (``+44 7700 900123``) or,
        with ``region``, in national form (``07700 900123``). Other kinds carry a prefix:
        ``wa:447700900123``, ``bsuid:GB.1502576394655843``, ``email:ada@example.com``.

        Raises:
            InvalidIdentifierError: the text is not an identifier of a known kind.
        """
        text = text.strip()
        prefix, sep, rest = text.partition(":")
        kind = _PREFIXES.get(prefix.lower()) if sep else None
        if kind is None:
            return cls(IdentifierKind.PHONE, _normalise_phone(text, region))
        rest = rest.strip()
        match kind:
            case IdentifierKind.PHONE:
                return cls(kind, _normalise_phone(rest, region))
            case IdentifierKind.WA:
                return cls(kind, _normalise_wa_id(rest))
            case IdentifierKind.BSUID:
                return cls(kind, _normalise_bsuid(rest))
            case IdentifierKind.EMAIL:
                return cls(kind, _normalise_email(rest))

    def __str__(self) -> str:
        """The identifier as the ledger prints it: E.164 for phones, ``kind:value`` else."""
        return address(self.kind, self.value)

    @property
    def region(self) -> str | None:
        """The ISO 3166 country of the person: a number's, a WhatsApp id's, a BSUID's prefix.

        None when unknown (an e-mail address, a non-geographic number).
        """
        match self.kind:
            case IdentifierKind.PHONE:
                return _country_of_number(self.value)
            case IdentifierKind.WA:
                return _country_of_number("+" + self.value)
            case IdentifierKind.BSUID:
                return self.value.split(".", 1)[0]
            case _:
                return None


@functools.lru_cache(maxsize=65536)
def _country_of_number(e164: str) -> str | None:
    import phonenumbers  # noqa: PLC0415 (see the module's docstring)

    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return None
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code or 0, ())
    if not regions or regions[0] == "001":  # 001: non-geographic numbers
        return None
    if len(regions) == 1:  # most codes: no need for the slow search of +1, +7, +44 ...
        return regions[0]
    # A shared code (+1, +7, +44 ...): the region whose plan the number fits, else the
    # code's main region (listed first), for numbers in ranges the metadata does not know.
    return phonenumbers.region_code_for_number(number) or regions[0]


_E164 = re.compile(r"\+[1-9]\d{6,14}")


def as_identifier(identifier: Identifier | str) -> Identifier:
    """The identifier to look a person up by.

    A string already in E.164 form skips ``phonenumbers``: a lookup needs no validation
    (an impossible number finds nobody), and checks at send time must be fast.

    Raises:
        InvalidIdentifierError: the text is not an identifier of a known kind.
    """
    if isinstance(identifier, Identifier):
        return identifier
    if _E164.fullmatch(identifier):
        return Identifier(IdentifierKind.PHONE, identifier)
    return Identifier.parse(identifier)


def _normalise_phone(text: str, region: str | None) -> str:
    import phonenumbers  # noqa: PLC0415 (see the module's docstring)

    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as e:
        hint = "" if region else "; write it with its country code (+44 ...) or give a region"
        msg = f"cannot read {_shown(text)} as a phone number ({_reason(e)}){hint}"
        raise InvalidIdentifierError(msg) from None
    # Possible (right length for its country) rather than valid (in an allocated range):
    # number metadata lags new allocations, and an opt-out must never be refused for that.
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible == phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        msg = (
            f"{_shown(text)} is a local number, dialled without its area code: "
            "write the whole number"
        )
        raise InvalidIdentifierError(msg)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:
        msg = f"{_shown(text)} is not a possible phone number for its country (wrong length)"
        raise InvalidIdentifierError(msg)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _shown(text: str, limit: int = 40) -> str:
    """The text as an error message quotes it: whole if short, else its start."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def _reason(error: phonenumbers.NumberParseException) -> str:
    import phonenumbers  # noqa: PLC0415 (see the module's docstring)

    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no or unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }
    return reasons.get(error.error_type, "unreadable")


def _normalise_wa_id(text: str) -> str:
    digits = _SEPARATORS.sub("", text).removeprefix("+")
    if not _WA_ID.fullmatch(digits):
        msg = f"{_shown(text)} is not a WhatsApp id (wa_id): expected 5 to 20 digits"
        raise InvalidIdentifierError(msg)
    return digits


def _normalise_bsuid(text: str) -> str:
    match = _BSUID.fullmatch(text)
    if match is None:
        msg = (
            f"{_shown(text)} is not a business-scoped user id: expected a country code, a dot "
            "and up to 128 letters or digits (e.g. GB.1502576394655843)"
        )
        raise InvalidIdentifierError(msg)
    return match.group(1).upper() + match.group(2)


def _normalise_email(text: str) -> str:
    # Matching, not deliverability: the ledger needs one spelling per address.
    address = text.lower()
    if not _EMAIL.fullmatch(address) or len(address) > 254:  # noqa: PLR2004 (RFC 5321)
        msg = f"{_shown(text)} is not an e-mail address"
        raise InvalidIdentifierError(msg)
    return address
