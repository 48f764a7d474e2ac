"""The parts of a webhook item that take more than one value to read.

- Who an item names: messages name their sender (``from``, ``from_user_id``), statuses
  their recipient (``recipient_id``, ``recipient_user_id``) and preferences their person
  (``wa_id``, ``user_id``); the change's ``contacts`` entry for that person adds what the
  item leaves out. An identifier that does not parse makes the item malformed; a phone
  number that is not one is dropped (the person is still known by their ``wa_id``).
- What a reply says: the text to classify and the button payload of a message.
- A status's errors, and a preference's action.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from consent_ledger.exceptions import InvalidIdentifierError
from consent_ledger.model.identifiers import Identifier, IdentifierKind
from consent_ledger.whatsapp._json import (
    JSONObject,
    MalformedError,
    as_object,
    integer,
    optional_string,
    optional_text,
    required,
    string,
    text,
)
from consent_ledger.whatsapp.signals import PreferenceAction, WhatsAppUser


def sender_of(
    message: JSONObject, contacts: list[Any], path: str, value_path: str
) -> tuple[WhatsAppUser, JSONObject | None]:
    """Who sent a message, and their ``contacts`` entry if the change has one."""
    sent_from = optional_string(message, "from", path)
    return person(
        path,
        value_path,
        contacts,
        wa_id=sent_from,
        bsuid=optional_string(message, "from_user_id", path),
        parent_bsuid=optional_string(message, "from_parent_user_id", path),
        phone=sent_from,
        what="'from' or 'from_user_id'",
    )


def recipient_of(
    status: JSONObject, contacts: list[Any], path: str, value_path: str
) -> tuple[WhatsAppUser, JSONObject | None]:
    """Whom a status is about (the business's message went to them), and their contact."""
    recipient = optional_string(status, "recipient_id", path)
    bsuid = optional_string(status, "recipient_user_id", path)
    if recipient is not None and _looks_like_bsuid(recipient):  # a send to a BSUID
        recipient, bsuid = None, bsuid or recipient
    return person(
        path,
        value_path,
        contacts,
        wa_id=recipient,
        bsuid=bsuid,
        parent_bsuid=optional_string(status, "recipient_parent_user_id", path),
        phone=None,
        what="'recipient_id' or 'recipient_user_id'",
    )


def person(  # noqa: PLR0913 (every way a payload names a person)
    path: str,
    value_path: str,
    contacts: list[Any],
    *,
    wa_id: str | None,
    bsuid: str | None,
    parent_bsuid: str | None,
    phone: str | None,
    what: str,
) -> tuple[WhatsAppUser, JSONObject | None]:
    """The person an item names, completed from the change's ``contacts`` entry for them."""
    if wa_id is None and bsuid is None:
        raise MalformedError(path, f"no {what}: whose is it?")
    found = _contact_for(contacts, wa_id, bsuid)
    contact: JSONObject | None = None
    if found is not None:
        index, contact = found
        contact_path = f"{value_path}.contacts[{index}]"
        wa_id = optional_string(contact, "wa_id", contact_path) or wa_id
        bsuid = bsuid or optional_string(contact, "user_id", contact_path)
        parent_bsuid = parent_bsuid or optional_string(contact, "parent_user_id", contact_path)
    user = WhatsAppUser(
        wa_id=_identifier(IdentifierKind.WA, wa_id, path),
        phone=_phone(phone),
        bsuid=_identifier(IdentifierKind.BSUID, bsuid, path),
        parent_bsuid=_identifier(IdentifierKind.BSUID, parent_bsuid, path),
    )
    return user, contact


def new_identity(
    system: JSONObject, user: WhatsAppUser, path: str, *, number_changed: bool
) -> tuple[WhatsAppUser, WhatsAppUser]:
    """Who a ``system`` message says the person was, and who they are now.

    A number change gives the new WhatsApp id (``wa_id``; ``new_wa_id`` in older versions),
    which spells the new number, and the new business-scoped ids (``user_id``,
    ``parent_user_id``); either change names the previous ones (``previous_user_id``,
    ``previous_parent_user_id``), which belong to the person as they were.
    """
    previous_id = _at(system, "previous_user_id", path) or user.bsuid
    previous_parent = _at(system, "previous_parent_user_id", path) or user.parent_bsuid
    previous = WhatsAppUser(
        wa_id=user.wa_id,
        phone=user.phone,
        bsuid=_identifier(IdentifierKind.BSUID, previous_id, path),
        parent_bsuid=_identifier(IdentifierKind.BSUID, previous_parent, path),
    )
    new_wa_id = _at(system, "wa_id", path) or _at(system, "new_wa_id", path)
    if number_changed and new_wa_id is None:
        raise MalformedError(path, "a number change without the new 'wa_id'")
    bsuid = _identifier(IdentifierKind.BSUID, _at(system, "user_id", path), path)
    if new_wa_id is None and bsuid is None:
        raise MalformedError(path, "an identity change without the new 'user_id'")
    now = WhatsAppUser(
        wa_id=_identifier(IdentifierKind.WA, new_wa_id, path) if number_changed else user.wa_id,
        phone=_phone(new_wa_id) if number_changed else user.phone,
        bsuid=bsuid,
        parent_bsuid=_identifier(IdentifierKind.BSUID, _at(system, "parent_user_id", path), path),
    )
    return previous, now


def _at(item: JSONObject, key: str, path: str) -> str | None:
    return optional_string(item, key, path)


def _contact_for(
    contacts: list[Any], wa_id: str | None, bsuid: str | None
) -> tuple[int, JSONObject] | None:
    """The contact entry of a person: by wa_id or BSUID, or the only entry there is."""
    entries = [(i, c) for i, c in enumerate(contacts) if isinstance(c, dict)]
    for index, contact in entries:
        if (wa_id is not None and str(contact.get("wa_id")) == wa_id) or (
            bsuid is not None and contact.get("user_id") == bsuid
        ):
            return index, contact
    # One contact per change is Meta's shape; its wa_id may differ from the number in 'from'.
    return entries[0] if len(contacts) == 1 and entries else None


def _identifier(kind: IdentifierKind, value: str | None, path: str) -> str | None:
    if value is None:
        return None
    try:
        return Identifier.parse(f"{kind}:{value}").value
    except InvalidIdentifierError as e:
        raise MalformedError(path, str(e)) from None


def _phone(value: str | None) -> str | None:
    """E.164 of a number as webhooks write it (digits, no +), or None if it is none."""
    if value is None or not value.isdigit():
        return None
    try:
        return Identifier.parse("+" + value).value
    except InvalidIdentifierError:
        return None  # still known by its wa_id; an opt-out is never refused for this


def _looks_like_bsuid(value: str) -> bool:
    return "." in value and value[:2].isalpha()


class ErrorItem(NamedTuple):
    """One of a status's ``errors``, as read."""

    code: int
    title: str | None
    message: str | None
    details: str | None


def error_item(error: object, path: str) -> ErrorItem:
    """One of a status's ``errors``: code, title, message, ``error_data.details``."""
    error = as_object(error, path)
    data = error.get("error_data")
    return ErrorItem(
        code=integer(error, "code", path),
        title=optional_text(error, "title", path),
        message=optional_text(error, "message", path),
        details=optional_text(data, "details", f"{path}.error_data")
        if isinstance(data, dict)
        else None,
    )


def reply_of(message: JSONObject, message_type: str, path: str) -> tuple[str | None, str | None]:
    """The text to classify and the button payload (or id) of a message, if it has them."""
    match message_type:
        case "text":
            text_item = as_object(required(message, "text", path), f"{path}.text")
            return text(text_item, "body", f"{path}.text"), None
        case "button":
            button = as_object(required(message, "button", path), f"{path}.button")
            title = optional_text(button, "text", f"{path}.button")
            payload = optional_text(button, "payload", f"{path}.button")
            if title is None and payload is None:
                where = f"{path}.button"
                raise MalformedError(where, "no 'text' or 'payload'")
            return title, payload
        case "interactive":
            interactive = as_object(required(message, "interactive", path), f"{path}.interactive")
            kind = optional_string(interactive, "type", f"{path}.interactive")
            if kind in {"button_reply", "list_reply"}:
                reply_path = f"{path}.interactive.{kind}"
                reply = as_object(required(interactive, kind, f"{path}.interactive"), reply_path)
                return (
                    optional_text(reply, "title", reply_path),
                    optional_text(reply, "id", reply_path),
                )
            return None, None
        case _:
            return None, None


def preference_action(item: JSONObject, key: str, path: str) -> PreferenceAction:
    """``stop`` or ``resume``, in any case."""
    value = string(item, key, path)
    try:
        return PreferenceAction(value.lower())
    except ValueError:
        msg = f"{key!r} is {value!r}: expected 'stop' or 'resume'"
        raise MalformedError(path, msg) from None
