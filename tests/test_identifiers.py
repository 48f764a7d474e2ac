"""Identifiers are read in the forms people write them and normalised to one spelling."""

from __future__ import annotations

import pytest

from consent_ledger import Identifier, IdentifierKind, InvalidIdentifierError


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+44 7700 900123", None, "+447700900123"),
        ("+44 (0)7700-900123", None, "+447700900123"),
        ("07700 900123", "GB", "+447700900123"),
        ("07700 900123", "gb", "+447700900123"),
        ("tel:+1 (202) 555-0143", None, "+12025550143"),
        ("0491 570 156", "AU", "+61491570156"),
        ("  +61491570156  ", None, "+61491570156"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(text: str, region: str | None, expected: str) -> None:
    identifier = Identifier.parse(text, region)

    assert identifier == Identifier(IdentifierKind.PHONE, expected)
    assert str(identifier) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wa:447700900123", Identifier(IdentifierKind.WA, "447700900123")),
        ("WA: +44 7700 900123", Identifier(IdentifierKind.WA, "447700900123")),
        ("bsuid:gb.1502576394655843", Identifier(IdentifierKind.BSUID, "GB.1502576394655843")),
        ("bsuid:US.ENT.abc123", Identifier(IdentifierKind.BSUID, "US.ENT.abc123")),
        (
            "email:Ada.Lovelace@Example.COM",
            Identifier(IdentifierKind.EMAIL, "ada.lovelace@example.com"),
        ),
    ],
)
def test_typed_identifiers(text: str, expected: Identifier) -> None:
    assert Identifier.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("07700 900123", "write it with its country code"),
        ("hello", "cannot read 'hello' as a phone number"),
        ("+44 77", "not a possible phone number"),
        ("wa:12ab", "not a WhatsApp id"),
        ("bsuid:1502576394655843", "not a business-scoped user id"),
        ("email:not-an-address", "not an e-mail address"),
    ],
)
def test_unreadable_identifiers_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidIdentifierError, match=message):
        Identifier.parse(text)


def test_the_region_of_a_phone_number() -> None:
    assert Identifier.parse("+61 491 570 156").region == "AU"
    assert Identifier.parse("email:a@example.com").region is None
