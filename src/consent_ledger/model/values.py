"""Value objects that events carry, and the validated types of their fields."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

from consent_ledger.exceptions import InvalidInputError
from consent_ledger.model.plain import NoticeRef, utc_seconds, utc_text
from consent_ledger.model.taxonomy import Method, check_categories, check_category_name

__all__ = [  # NoticeRef and the time helpers live in .plain, which needs no pydantic
    "Actor",
    "Categories",
    "CategoryName",
    "Immutable",
    "Language",
    "NoticeRef",
    "Provenance",
    "Sealed",
    "Slug",
    "check_actor",
    "check_language",
    "check_slug",
    "utc_seconds",
    "utc_text",
]


_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_MAX_ACTOR_CHARS = 200


def check_slug(value: str) -> str:
    """Return ``value`` if it can be a business, notice or sender id.

    Raises:
        InvalidInputError: it cannot.
    """
    if not _SLUG.fullmatch(value):
        msg = (
            f"{value!r} is not a valid id: use 1 to 64 lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
        raise InvalidInputError(msg)
    return value


def check_language(value: str) -> str:
    """Return ``value`` if it is a BCP 47 language tag.

    Raises:
        InvalidInputError: it is not.
    """
    if not _LANGUAGE.fullmatch(value):
        msg = f"{value!r} is not a language tag (BCP 47, e.g. 'en', 'it', 'pt-BR')"
        raise InvalidInputError(msg)
    return value


def check_actor(value: str) -> str:
    """Return ``value`` if it can name who acted.

    Raises:
        InvalidInputError: it is empty, too long or holds control characters.
    """
    if not value.strip() or len(value) > _MAX_ACTOR_CHARS or not value.isprintable():
        msg = f"{value!r} is not an actor: give who acted, e.g. 'subject' or 'operator:ada'"
        raise InvalidInputError(msg)
    return value


Slug = Annotated[str, AfterValidator(check_slug)]
Language = Annotated[str, AfterValidator(check_language)]
Categories = Annotated[tuple[str, ...], AfterValidator(check_categories)]
CategoryName = Annotated[str, AfterValidator(check_category_name)]
Actor = Annotated[str, AfterValidator(check_actor)]


class Immutable(BaseModel):
    """A frozen pydantic model that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Sealed(Immutable):
    """Personal data encrypted with its subject's data key (AES-256-GCM, base64 fields)."""

    alg: Literal["A256GCM"] = "A256GCM"
    nonce: str
    ct: str


class Provenance(Immutable):
    """How, where, by whom and when a consent decision was made."""

    method: Method
    collection_point: str | None = None
    actor: Actor = "subject"
    occurred_at: AwareDatetime
